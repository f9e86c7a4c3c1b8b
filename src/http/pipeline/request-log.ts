// One log line per request, with the fields of the Go service's request log, through Fastify's LogController.
import { type FastifyReply, type FastifyRequest, LogController } from 'fastify'
import { RPC_CALL } from '../../admission/operation.ts'
import { redactUrl } from '../../logger.ts'

// Node decodes header bytes as latin1, one character per byte: the text's length is the size on the wire (name and
// value, plus ": " or "\r\n" for each).
function headerBytes(rawHeaders: readonly string[]): number {
  let bytes = 0
  for (const part of rawHeaders) bytes += part.length + 2
  return bytes
}

export class RequestLog extends LogController {
  constructor() {
    super({ requestIdLogLabel: 'request_id' })
  }

  // The single line is written when the response is done; nothing is logged on arrival.
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    // An RPC call has its line from the RPC pipeline (src/rpc/pipeline/interceptors.ts), with its method and code.
    if (request.routeOptions.config?.operation === RPC_CALL && !error) return
    const raw = request.raw
    const fields = {
      received_time: new Date(Date.now() - reply.elapsedTime).toISOString(),
      method: request.method,
      // A token sent in the query string is refused, but the URL would still carry it into the log.
      url: redactUrl(request.url),
      header_size: headerBytes(raw.rawHeaders),
      body_size: Number(request.headers['content-length'] ?? 0),
      agent: request.headers['user-agent'] ?? '',
      referer: request.headers.referer ?? '',
      proto: `HTTP/${raw.httpVersion}`,
      remote_ip: request.ip,
      server_ip: raw.socket?.localAddress ?? '',
      status: reply.statusCode,
      resp_body_size: Number(reply.getHeader('content-length') ?? 0),
      latency: Number(reply.elapsedTime.toFixed(3)),
    }
    if (error) {
      request.log.error({ ...fields, err: error }, 'request failed while responding')
    } else {
      request.log.info(fields, 'request')
    }
  }
}
