// redactUrl and the logger keep credentials out of logged URLs and error messages: secret query parameters are
// replaced by name, in any case and escaping. A whole run's logs are searched in test/system/observability.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { createLogger, REDACTED, redactUrl, SECRET_QUERY_PARAMETERS } from '../../../src/logger.ts'
import { describe } from '../../helpers/describe.ts'

describe('redactUrl and error messages', () => {
  it('when a URL has secret parameters, then their values are replaced, by name in any case, the rest kept', () => {
    assert.equal(
      redactUrl('/v1/books?q=a%20b&ACCESS_TOKEN=x.y.z&page=2&api_key=k&token&password='),
      `/v1/books?q=a%20b&ACCESS_TOKEN=${REDACTED}&page=2&api_key=${REDACTED}&token&password=${REDACTED}`,
    )
  })

  it('when a name is percent-escaped, then it is read as the query parser reads it; an undecodable one is kept', () => {
    assert.equal(
      redactUrl('/x?access%5Ftoken=s&client%5fsecret=t'),
      `/x?access%5Ftoken=${REDACTED}&client%5fsecret=${REDACTED}`,
    )
    assert.equal(redactUrl('/x?%ZZ=1&to%6Ben=s'), `/x?%ZZ=1&to%6Ben=${REDACTED}`)
  })

  it('when a URL has no secret parameter, then it is returned as it came', () => {
    for (const url of ['/v1/books', '/v1/books?', '/v1/books?q=token&author=password', '/v1/books?tokens=1']) {
      assert.equal(redactUrl(url), url)
    }
  })

  it('when every listed name is used, then each is redacted', () => {
    for (const name of SECRET_QUERY_PARAMETERS) {
      assert.equal(redactUrl(`/x?${name.toUpperCase()}=s`), `/x?${name.toUpperCase()}=${REDACTED}`, name)
    }
  })

  it('when an error message or a logged request quotes a URL with a token, then the log line has it redacted', () => {
    const lines: string[] = []
    const logger = createLogger('debug', { write: (line: string) => void lines.push(line) })
    logger.error({ err: new Error("'/v1/%zz?access_token=abc.def.ghi&x=1' is not a valid url component") }, 'x')
    logger.info({ req: { method: 'GET', url: '/v1/books?Token=abc.def.ghi' } }, 'x')
    assert.doesNotMatch(lines.join('\n'), /abc\.def\.ghi/)
    assert.match(lines[0] ?? '', /access_token=\[REDACTED\]&x=1/)
    assert.match(lines[1] ?? '', /Token=\[REDACTED\]/)
  })
})
