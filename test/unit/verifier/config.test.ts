// The verifier's settings: defaults, the choice of event source, and the problems it names at start-up.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { ConfigError } from '../../../src/config/environment.ts'
import { parseVerifierConfig } from '../../../src/verifier/config.ts'
import { describe } from '../../helpers/describe.ts'

const problemsOf = (env: Record<string, string>) => {
  try {
    parseVerifierConfig(env)
  } catch (error) {
    assert.ok(error instanceof ConfigError)
    return error.problems
  }
  assert.fail('the configuration was accepted')
}

describe('the verifier configuration', () => {
  it('when nothing is set, then it follows the feed of the books service on localhost:8080 over Connect', () => {
    const config = parseVerifierConfig({})
    assert.equal(config.books.url, 'http://127.0.0.1:8080')
    assert.equal(config.books.protocol, 'connect')
    assert.equal(config.nats, undefined)
    assert.deepEqual(config.images.allow, [])
    assert.equal(config.server.port, 8081)
    assert.deepEqual(config.consumer.backoffMs, [1000, 5000, 30000, 60000])
  })

  it('when NATS_URL is set, then it consumes JetStream, and may call the gRPC port', () => {
    const config = parseVerifierConfig({
      NATS_URL: 'nats://127.0.0.1:4222',
      VERIFIER_BOOKS_URL: 'http://books:9090',
      VERIFIER_BOOKS_PROTOCOL: 'grpc',
      VERIFIER_MAX_DELIVER: '3',
      VERIFIER_ALLOW_HOSTS: '127.0.0.1, 10.0.0.0/8',
    })
    assert.deepEqual(config.nats?.servers, ['nats://127.0.0.1:4222'])
    assert.equal(config.books.protocol, 'grpc')
    assert.deepEqual(config.consumer.backoffMs, [1000, 5000], 'one wait fewer than the deliveries')
    assert.deepEqual(config.images.allow, ['127.0.0.1', '10.0.0.0/8'])
  })

  it('when settings are wrong, then every one is named', () => {
    const problems = problemsOf({
      VERIFIER_BOOKS_PROTOCOL: 'grpc',
      VERIFIER_ALLOW_HOSTS: 'localhost',
      VERIFIER_BOOKS_URL: 'books:8080',
      NATS_USER: 'verifier',
    })
    for (const name of ['VERIFIER_BOOKS_PROTOCOL', 'VERIFIER_ALLOW_HOSTS', 'VERIFIER_BOOKS_URL', 'NATS_USER']) {
      assert.ok(
        problems.some((problem) => problem.startsWith(name)),
        `${name} is named in ${problems.join('; ')}`,
      )
    }
  })
})
