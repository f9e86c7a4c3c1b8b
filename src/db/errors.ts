// Which database failures mean "unavailable, try again later" (503) rather than a bug (500), and the one that
// refuses start-up.

export const codeOf = (error: unknown): string =>
  typeof error === 'object' && error !== null ? String((error as { code?: unknown }).code ?? '') : ''

// The server cannot be reached or is not answering (as opposed to rejecting a statement): node and postgres.js
// connection errors, our own query deadline, and the SQLSTATEs of a server shutting down or not yet accepting.
const CONNECTION_FAILURE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'QUERY_TIMEOUT',
  '57P01',
  '57P02',
  '57P03',
])

/** Connection-level failures, SQLSTATE class 08 included: these open the circuit breaker. */
export function isConnectionFailure(error: unknown): boolean {
  const code = codeOf(error)
  return CONNECTION_FAILURE_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code)
}

// Failures after a statement was sent that a retry on another connection may cure: the connection died, the
// backend was terminated, or the transaction lost a serialization race.
const TRANSIENT_MID_FLIGHT_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'ECONNRESET',
  'EPIPE',
  '57P01',
  '40001',
  '40P01',
])

export function isTransientMidFlight(error: unknown): boolean {
  return TRANSIENT_MID_FLIGHT_CODES.has(codeOf(error))
}

// Also "try again later": the circuit is open, the pool was closed, the server cancelled a statement
// (statement_timeout), or a transaction lost a serialization race or a deadlock.
const ALSO_UNAVAILABLE_CODES = new Set(['CIRCUIT_OPEN', 'CONNECTION_ENDED', '57014', '40001', '40P01'])

/** What a client is told to wait before retrying a request the database could not serve, at every door. */
export const DATABASE_RETRY_AFTER_SECONDS = 5

export function isDatabaseUnavailable(error: unknown): boolean {
  const code = codeOf(error)
  // SQLSTATE class 53: insufficient resources, e.g. too many connections
  return isConnectionFailure(error) || ALSO_UNAVAILABLE_CODES.has(code) || /^53[0-9A-Z]{3}$/.test(code)
}

/**
 * This process cannot use the embedded database folder: another process holds it, or it cannot be created or
 * written. Not a failure to retry: entry points print the message alone, with no stack, and exit with `exitCode`.
 */
export class EmbeddedFolderError extends Error {
  override name = 'EmbeddedFolderError'
  readonly exitCode: number

  constructor(message: string, exitCode: number) {
    super(message)
    this.exitCode = exitCode
  }
}
