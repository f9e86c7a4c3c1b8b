// What an RPC implementation may read of its call, and the errors it answers with.
import { create } from '@bufbuild/protobuf'
import { Code, ConnectError, createContextKey, type HandlerContext } from '@connectrpc/connect'
import type { Principal } from '../../auth/tokens.ts'
import { BadRequest_FieldViolationSchema, BadRequestSchema } from '../../gen/google/rpc/error_details_pb.js'

/** The verified caller of this call, set by the authentication interceptor. */
export const PRINCIPAL = createContextKey<Principal | undefined>(undefined, { description: 'the verified caller' })
/** The client's address, set by the door the call came through (behind trusted proxies, the client's). */
export const CLIENT_ADDRESS = createContextKey<string>('', { description: 'the client address' })

/** Whose idempotency keys these are: the token's subject, or without authentication the client's address. */
export function callerOf(context: HandlerContext): string {
  const principal = context.values.get(PRINCIPAL)
  return principal === undefined ? `ip:${context.values.get(CLIENT_ADDRESS)}` : `sub:${principal.subject}`
}

/**
 * INVALID_ARGUMENT with a google.rpc.BadRequest detail: one violation per field, with the messages REST's 422
 * `errors` map carries. `rename` turns a field name into the request message's.
 */
export function invalidArgument(errors: Readonly<Record<string, string>>, rename: Record<string, string> = {}) {
  const violations = Object.entries(errors).map(([field, description]) =>
    create(BadRequest_FieldViolationSchema, { field: rename[field] ?? field, description }),
  )
  return new ConnectError('request validation failed', Code.InvalidArgument, undefined, [
    { desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: violations }) },
  ])
}

/**
 * PERMISSION_DENIED for a call its scope allowed but its target does not, with a google.rpc.BadRequest detail
 * naming the fields that are the reason, when a field is.
 */
export function permissionDenied(reason: string, errors?: Readonly<Record<string, string>>) {
  const violations = Object.entries(errors ?? {}).map(([field, description]) =>
    create(BadRequest_FieldViolationSchema, { field, description }),
  )
  const details =
    violations.length === 0
      ? []
      : [{ desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: violations }) }]
  return new ConnectError(reason, Code.PermissionDenied, undefined, details)
}
