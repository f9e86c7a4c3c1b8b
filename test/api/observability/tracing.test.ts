// Traces: a request carrying traceparent yields a SERVER span in that trace with a PostgreSQL CLIENT child,
// exported over OTLP/HTTP to a receiver on 127.0.0.1; its log lines carry the trace id.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { describe } from '../../helpers/describe.ts'
import { attribute, otlpReceiver } from '../../helpers/otlp-receiver.ts'
import { BACKENDS, skipReason, startService } from '../../helpers/service.ts'

// Tests run one after another: the tracer provider is global to the process.
for (const backend of BACKENDS) {
  describe(`tracing on ${backend}`, { skip: await skipReason(backend) }, () => {
    it('when a traced request reads a book, then a server span and a PostgreSQL child span are exported', async () => {
      const receiver = await otlpReceiver()
      const service = await startService(backend, {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_SERVICE_NAME: 'myapp-test',
      })
      try {
        const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
        const callerSpanId = '00f067aa0ba902b7'
        const response = await service.fetch('/v1/books/01900000-0000-7000-8000-000000000000', {
          headers: { traceparent: `00-${traceId}-${callerSpanId}-01`, 'x-request-id': `traced-${backend}` },
        })
        assert.equal(response.status, 404)
        await service.tracing?.forceFlush()

        assert.match(receiver.contentTypes[0] ?? '', /^application\/json/)
        const inTrace = receiver.spans.filter((span) => span.traceId === traceId)
        const server = inTrace.find((span) => span.kind === 2)
        assert.ok(server, `a SERVER span in trace ${traceId}: ${JSON.stringify(receiver.spans.map((s) => s.name))}`)
        assert.equal(server.name, 'GET /v1/books/:id')
        assert.equal(server.parentSpanId, callerSpanId)
        assert.equal(attribute(server, 'http.route'), '/v1/books/:id')
        assert.equal(attribute(server, 'http.request.method'), 'GET')
        assert.equal(Number(attribute(server, 'http.response.status_code')), 404)

        const query = inTrace.find((span) => span.kind === 3)
        assert.ok(query, 'a CLIENT span for the query')
        assert.equal(query.parentSpanId, server.spanId)
        assert.equal(query.name, `SELECT ${backend === 'postgres' ? service.serverDatabase?.name : 'postgres'}`)
        assert.equal(attribute(query, 'db.system.name'), 'postgresql')
        assert.match(String(attribute(query, 'db.query.text')), /^SELECT .* FROM books WHERE id = \$1$/)

        const lines = service.logs.filter((line) => line.request_id === `traced-${backend}`)
        assert.ok(lines.length >= 1)
        for (const line of lines) {
          assert.equal(line.trace_id, traceId, `${line.message} carries the trace id`)
          assert.match(String(line.span_id), /^[0-9a-f]{16}$/)
        }
      } finally {
        await service.close()
        receiver.server.close()
      }
    })
  })
}

describe('the default sampler', () => {
  it('when requests arrive without traceparent, then about one in ten is traced', async () => {
    const receiver = await otlpReceiver()
    const service = await startService('embedded', { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url })
    try {
      for (let i = 0; i < 300; i++) assert.equal((await service.fetch('/readyz')).status, 200)
      await service.tracing?.forceFlush()
      const roots = receiver.spans.filter((span) => span.kind === 2 && span.parentSpanId === undefined)
      // Binomial(300, 0.1): mean 30; outside 8..60 has a probability below one in a million.
      assert.ok(roots.length >= 8 && roots.length <= 60, `${roots.length} of 300 requests traced`)
    } finally {
      await service.close()
      receiver.server.close()
    }
  })
})

describe('tracing off', () => {
  it('when no endpoint is configured, then nothing is traced and log lines have no trace ids', async () => {
    const service = await startService('embedded')
    try {
      assert.equal(service.tracing, undefined)
      await service.fetch('/readyz', {
        headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'x-request-id': 'untraced' },
      })
      const line = service.logs.find((candidate) => candidate.request_id === 'untraced')
      assert.ok(line)
      assert.equal(line.trace_id, undefined)
    } finally {
      await service.close()
    }
  })
})
