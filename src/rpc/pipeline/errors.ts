// Every failure of a call leaves as a status code: the implementation's own, UNAVAILABLE with retry information
// for a database that does not answer, INTERNAL (logged here, never shown) for anything else.
import { create, type DescMessage } from '@bufbuild/protobuf'
import { durationFromMs } from '@bufbuild/protobuf/wkt'
import { Code, ConnectError } from '@connectrpc/connect'
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../../db/errors.ts'
import { BadRequestSchema, RetryInfoSchema } from '../../gen/google/rpc/error_details_pb.js'
import type { Logger } from '../../logger.ts'

/** The gRPC names of the codes, as metrics, logs and the README give them. */
const CODE_NAMES: Record<Code, string> = {
  [Code.Canceled]: 'CANCELLED',
  [Code.Unknown]: 'UNKNOWN',
  [Code.InvalidArgument]: 'INVALID_ARGUMENT',
  [Code.DeadlineExceeded]: 'DEADLINE_EXCEEDED',
  [Code.NotFound]: 'NOT_FOUND',
  [Code.AlreadyExists]: 'ALREADY_EXISTS',
  [Code.PermissionDenied]: 'PERMISSION_DENIED',
  [Code.ResourceExhausted]: 'RESOURCE_EXHAUSTED',
  [Code.FailedPrecondition]: 'FAILED_PRECONDITION',
  [Code.Aborted]: 'ABORTED',
  [Code.OutOfRange]: 'OUT_OF_RANGE',
  [Code.Unimplemented]: 'UNIMPLEMENTED',
  [Code.Internal]: 'INTERNAL',
  [Code.Unavailable]: 'UNAVAILABLE',
  [Code.DataLoss]: 'DATA_LOSS',
  [Code.Unauthenticated]: 'UNAUTHENTICATED',
}

/**
 * Every detail message an error of this service carries, for reflection to describe, so that grpcurl and
 * buf curl print them decoded: INVALID_ARGUMENT's google.rpc.BadRequest (invalidArgument, ../toolkit/calls.ts)
 * and UNAVAILABLE's google.rpc.RetryInfo (toConnectError, below). A new kind of detail is added here.
 */
export const ERROR_DETAILS: readonly DescMessage[] = [BadRequestSchema, RetryInfoSchema]

export const codeName = (code: Code) => CODE_NAMES[code] ?? 'UNKNOWN'

const RETRY_AFTER_MS = DATABASE_RETRY_AFTER_SECONDS * 1000

export function toConnectError(error: unknown, logger: Logger): ConnectError {
  if (error instanceof ConnectError) return error
  if (isDatabaseUnavailable(error)) {
    return new ConnectError(
      'the database is unavailable; try again later',
      Code.Unavailable,
      { 'retry-after': String(RETRY_AFTER_MS / 1000) },
      [{ desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: durationFromMs(RETRY_AFTER_MS) }) }],
    )
  }
  logger.error({ err: error }, 'call failed')
  return new ConnectError('internal server error', Code.Internal)
}
