// A minimal OTLP/HTTP JSON receiver on 127.0.0.1, collecting every span it is sent: the collector the tracing
// tests export to.
import { createServer, type Server } from 'node:http'

export interface ExportedSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  attributes: { key: string; value: Record<string, unknown> }[]
}

/** OTLP's SpanKind values. */
export const SERVER_KIND = 2
export const CLIENT_KIND = 3

export interface OtlpReceiver {
  url: string
  spans: ExportedSpan[]
  /** The content type of every export received. */
  contentTypes: string[]
  server: Server
}

export async function otlpReceiver(): Promise<OtlpReceiver> {
  const spans: ExportedSpan[] = []
  const contentTypes: string[] = []
  const server = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk) => {
      body += chunk
    })
    request.on('end', () => {
      contentTypes.push(String(request.headers['content-type']))
      if (request.url === '/v1/traces') {
        const payload = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: ExportedSpan[] }[] }[] }
        for (const resource of payload.resourceSpans) {
          for (const scope of resource.scopeSpans) spans.push(...scope.spans)
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, spans, contentTypes, server }
}

/** The value of a span attribute, whatever its OTLP type. */
export const attribute = (span: ExportedSpan, key: string) => {
  const value = span.attributes.find((candidate) => candidate.key === key)?.value
  return value === undefined ? undefined : Object.values(value)[0]
}
