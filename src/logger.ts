// Structured JSON logs on stdout (pino); `npm run dev` pipes them through pino-pretty.
import type { EventEmitter } from 'node:events'
import { trace } from '@opentelemetry/api'
import { pino } from 'pino'

const CENSORED = '[redacted]'
const SECRET_HEADERS = new Set(['authorization', 'cookie', 'set-cookie', 'proxy-authorization'])

/**
 * Query parameters whose values are credentials, by name in any case. The API takes credentials in headers only,
 * but a client may still put a token in the URL; its value never reaches a log line.
 */
export const SECRET_QUERY_PARAMETERS: ReadonlySet<string> = new Set([
  'access_token',
  'api-key',
  'api_key',
  'apikey',
  'auth',
  'authorization',
  'client_secret',
  'code',
  'id_token',
  'jwt',
  'key',
  'passwd',
  'password',
  'pwd',
  'refresh_token',
  'secret',
  'session',
  'sessionid',
  'sig',
  'signature',
  'token',
  'x-amz-credential',
  'x-amz-security-token',
  'x-amz-signature',
])
export const REDACTED = '[REDACTED]'

// A name as the query-string parser reads it: `+` is a space, percent-escapes are decoded.
function parameterName(raw: string): string {
  const name = raw.replaceAll('+', ' ')
  try {
    return decodeURIComponent(name).toLowerCase()
  } catch {
    return name.toLowerCase()
  }
}

/** The URL with the value of every secret query parameter replaced by [REDACTED]; the rest is kept as sent. */
export function redactUrl(url: string): string {
  const start = url.indexOf('?')
  if (start === -1) return url
  let redacted = false
  const parameters = url
    .slice(start + 1)
    .split('&')
    .map((parameter) => {
      const equals = parameter.indexOf('=')
      if (equals === -1 || !SECRET_QUERY_PARAMETERS.has(parameterName(parameter.slice(0, equals)))) return parameter
      redacted = true
      return `${parameter.slice(0, equals + 1)}${REDACTED}`
    })
  return redacted ? `${url.slice(0, start + 1)}${parameters.join('&')}` : url
}

// A URL inside other text (an error message quoting the URL it could not route): the value runs up to the next
// separator, white space or quote.
const QUERY_PARAMETER_IN_TEXT = /([?&])([^?&=\s'"<>]+)=([^&\s'"<>]*)/g

function redactText(text: string): string {
  if (!text.includes('=')) return text
  return text.replace(QUERY_PARAMETER_IN_TEXT, (match, separator: string, name: string) =>
    SECRET_QUERY_PARAMETERS.has(parameterName(name)) ? `${separator}${name}=${REDACTED}` : match,
  )
}

/**
 * Headers with credentials censored. Secrets are kept out of the log by serializers on the keys that can carry
 * them (headers, req), which cost nothing on a line without those keys, and by describeConfig for the
 * configuration; pino's path redaction walked every line and took a fifth of the request log's cost.
 */
function censorHeaders(headers: unknown) {
  if (headers === null || typeof headers !== 'object') return headers
  const copy: Record<string, unknown> = { ...headers }
  for (const name of Object.keys(copy)) if (SECRET_HEADERS.has(name.toLowerCase())) copy[name] = CENSORED
  return copy
}

function censorRequest(request: unknown) {
  if (request === null || typeof request !== 'object') return request
  const { headers, ...rest } = request as { headers?: unknown; url?: unknown }
  if (typeof rest.url === 'string') rest.url = redactUrl(rest.url)
  return headers === undefined ? rest : { ...rest, headers: censorHeaders(headers) }
}

/**
 * Validation failures as keyword and place only. Ajv's verbose errors carry the offending value, and for an unknown
 * member the whole body, which may hold a password or personal data.
 */
function validationWithoutValues(validation: unknown) {
  if (!Array.isArray(validation)) return validation
  return validation.map((entry: Record<string, unknown>) => ({
    instancePath: entry.instancePath,
    keyword: entry.keyword,
    params: entry.params,
    message: entry.message,
  }))
}

// Drivers attach a failed statement's parameters to the error; they may hold personal data. Messages may quote a
// URL with a token in it.
function serializeError(error: Error) {
  const {
    params: _params,
    parameters: _parameters,
    ...rest
  } = pino.stdSerializers.err(error) as Record<string, unknown>
  for (const [name, value] of Object.entries(rest)) if (typeof value === 'string') rest[name] = redactText(value)
  if (rest.validation !== undefined) rest.validation = validationWithoutValues(rest.validation)
  return rest
}

/** trace_id and span_id of the active span, on every line written inside a traced request. */
function traceIds() {
  const span = trace.getActiveSpan()
  if (span === undefined) return {}
  const { traceId, spanId } = span.spanContext()
  return { trace_id: traceId, span_id: spanId }
}

/** A JSON logger for `service` (each line names it), for every service of the project. */
export function createLogger(level: string, destination?: pino.DestinationStream, service = 'myapp') {
  return pino(
    {
      level,
      base: { service },
      messageKey: 'message',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: serializeError, headers: censorHeaders, req: censorRequest },
      mixin: traceIds,
    },
    // Asynchronous by default: a synchronous write per line cost a quarter of the CPU of a /livez request. Lines
    // written while a write is in flight are batched into the next one; pino flushes synchronously on exit.
    destination ?? pino.destination({ dest: 1, sync: false }),
  )
}
export type Logger = ReturnType<typeof createLogger>

/**
 * Waits while a write of log lines is in flight (for at most a second), so that it ends before process.exit. A
 * write that fails because the reader has gone (EPIPE) then turns logging off; at exit, sonic-boom's synchronous
 * flush would instead retry that write for ever and the process would never end.
 */
export function flushLogs(logger: Logger): Promise<void> {
  // sonic-boom, behind pino.destination(), says whether a write is in flight only in this field.
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as EventEmitter & {
    _writing?: boolean
  }
  if (stream._writing !== true) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      stream.off('drain', done)
      stream.off('error', done)
      resolve()
    }
    const timer = setTimeout(done, 1000)
    stream.once('drain', done)
    stream.once('error', done)
  })
}
