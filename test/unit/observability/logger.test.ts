// The log keeps credentials out: headers and request objects are censored wherever they are logged.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { createLogger } from '../../../src/logger.ts'
import { describe } from '../../helpers/describe.ts'

function capture() {
  const lines: Record<string, unknown>[] = []
  const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line)) })
  return { logger, lines }
}

describe('the logger', () => {
  it('when headers with credentials are logged, then their values are censored and the rest kept', () => {
    const { logger, lines } = capture()
    logger.info({ headers: { Authorization: 'Bearer abc.def.ghi', cookie: 'session=1', accept: '*/*' } }, 'x')
    assert.deepEqual(lines[0]?.headers, { Authorization: '[redacted]', cookie: '[redacted]', accept: '*/*' })
    assert.doesNotMatch(JSON.stringify(lines), /abc\.def|session=1/)
  })

  it('when a request object is logged, then its headers are censored', () => {
    const { logger, lines } = capture()
    logger.child({}).warn({ req: { method: 'GET', headers: { 'proxy-authorization': 'Basic eDp5' } } }, 'x')
    assert.deepEqual(lines[0]?.req, { method: 'GET', headers: { 'proxy-authorization': '[redacted]' } })
  })

  it('when an error carries statement parameters, then they are left out', () => {
    const { logger, lines } = capture()
    logger.error({ err: Object.assign(new Error('duplicate key'), { parameters: ['ann@example.com'] }) }, 'x')
    assert.deepEqual((lines[0]?.err as { message?: string } | undefined)?.message, 'duplicate key')
    assert.doesNotMatch(JSON.stringify(lines), /ann@example\.com/)
  })
})
