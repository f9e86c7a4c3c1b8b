import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { it } from 'node:test'
import { ApiEnvSchema } from '../../../src/config/api.ts'
import { AuthEnvSchema } from '../../../src/config/auth.ts'
import { ConfigError, describeConfig, EnvSchema, parseConfig, readEnvironment } from '../../../src/config/config.ts'
import { DatabaseEnvSchema } from '../../../src/config/database.ts'
import { parseDuration } from '../../../src/config/duration.ts'
import { EventsEnvSchema } from '../../../src/config/events.ts'
import { LimitsEnvSchema } from '../../../src/config/limits.ts'
import { ObservabilityEnvSchema } from '../../../src/config/observability.ts'
import { formatProblems, type ProblemWording, problem } from '../../../src/config/problems.ts'
import { ServerEnvSchema } from '../../../src/config/server.ts'
import { describe } from '../../helpers/describe.ts'

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    parseConfig(env)
  } catch (error) {
    assert.ok(error instanceof ConfigError)
    return error.problems
  }
  assert.fail('expected a ConfigError')
}

describe('parseConfig', () => {
  it('when nothing is set, then the defaults apply and the embedded database is used', () => {
    const config = parseConfig({})
    assert.deepEqual(config, {
      server: {
        host: '0.0.0.0',
        port: 8080,
        grpcPort: undefined,
        readTimeoutMs: 5000,
        writeTimeoutMs: 10_000,
        idleTimeoutMs: 65_000,
        shutdownDelayMs: 0,
        shutdownTimeoutMs: 15_000,
        bodyLimit: 65_536,
        maxPipelined: 4,
        loadShedEventLoopDelayMs: 1000,
        workers: 1,
        trustProxy: false,
      },
      log: { level: 'info' },
      database: { kind: 'embedded', path: './data/pglite', debug: false },
      docs: { enabled: true },
      writes: { requireIfMatch: false },
      auth: { mode: 'none' },
      environment: 'development',
      events: { nats: undefined, retentionMs: 604_800_000 },
      rateLimit: {
        max: 600,
        windowMs: 60_000,
        redisUrl: undefined,
        namespace: 'myapp-rate-limit:',
        authFailures: { max: 20, windowMs: 60_000 },
      },
      cors: { origins: [] },
      metrics: { enabled: true },
      tracing: {
        tracesUrl: undefined,
        headers: {},
        serviceName: 'myapp',
        sampler: 'parentbased_traceidratio',
        samplerRatio: 0.1,
        exportDelayMs: 5000,
      },
      timeZone: 'UTC',
    })
  })

  it('when OTLP variables are set, then tracing is configured from them', () => {
    const config = parseConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc, x-tenant = blue',
      OTEL_SERVICE_NAME: 'books',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_BSP_SCHEDULE_DELAY: '200',
    })
    assert.deepEqual(config.tracing, {
      tracesUrl: 'http://collector:4318/v1/traces',
      headers: { authorization: 'Bearer abc', 'x-tenant': 'blue' },
      serviceName: 'books',
      sampler: 'parentbased_traceidratio',
      samplerRatio: 0.25,
      exportDelayMs: 200,
    })
    assert.equal(
      parseConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b/t' })
        .tracing.tracesUrl,
      'http://b/t',
    )
    assert.equal(
      parseConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_SDK_DISABLED: 'true' }).tracing.tracesUrl,
      undefined,
    )
    assert.doesNotMatch(JSON.stringify(describeConfig(config)), /abc/)
  })

  it('when OTLP variables are bad, then each is named', () => {
    assert.deepEqual(
      [
        ...problemsOf({
          OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318',
          OTEL_TRACES_SAMPLER_ARG: '2',
          OTEL_TRACES_SAMPLER: 'sometimes',
        }),
      ].sort(),
      [
        'OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:// or https:// URL (got "collector:4318")',
        'OTEL_TRACES_SAMPLER: must be one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio (got "sometimes")',
        'OTEL_TRACES_SAMPLER_ARG: must be <= 1 (got "2")',
      ],
    )
  })

  it('when the Go service variables are set, then each one is honoured', () => {
    const config = parseConfig({
      SERVER_HOST: '127.0.0.1',
      SERVER_PORT: '9090',
      SERVER_TIMEOUT_READ: '3s',
      SERVER_TIMEOUT_WRITE: '1m30s',
      SERVER_TIMEOUT_IDLE: '250ms',
      SERVER_SHUTDOWN_DELAY: '5s',
      SERVER_SHUTDOWN_TIMEOUT: '2s',
      SERVER_BODY_LIMIT: '1048576',
      SERVER_MAX_PIPELINED: '16',
      SERVER_DEBUG: 'true',
      DB_HOST: 'db.internal',
      DB_PORT: '6432',
      DB_USER: 'myapp_user',
      DB_PASS: 'p@ss/word',
      DB_NAME: 'myapp_db',
      DB_SSLMODE: 'require',
      DB_DEBUG: 'true',
      DB_POOL_MAX: '20',
      DB_POOL_READS: '3',
      DB_CONNECT_TIMEOUT: '2s',
      DB_STATEMENT_TIMEOUT: '500ms',
      DB_MIGRATE_ON_START: 'true',
      TZ: 'Asia/Singapore',
      DOCS_ENABLED: 'false',
    })
    assert.deepEqual(config.docs, { enabled: false })
    assert.deepEqual(config.server, {
      host: '127.0.0.1',
      port: 9090,
      grpcPort: undefined,
      readTimeoutMs: 3000,
      writeTimeoutMs: 90_000,
      idleTimeoutMs: 250,
      shutdownDelayMs: 5000,
      shutdownTimeoutMs: 2000,
      bodyLimit: 1_048_576,
      maxPipelined: 16,
      loadShedEventLoopDelayMs: 1000,
      workers: 1,
      trustProxy: false,
    })
    assert.equal(config.log.level, 'debug')
    assert.deepEqual(config.database, {
      kind: 'postgres',
      url: 'postgres://myapp_user:p%40ss%2Fword@db.internal:6432/myapp_db?sslmode=require',
      poolMax: 20,
      poolReads: 3,
      connectTimeoutMs: 2000,
      statementTimeoutMs: 500,
      queryTimeoutMs: 12_000,
      preparedStatements: true,
      migrateOnStart: true,
      debug: true,
    })
    assert.equal(config.timeZone, 'Asia/Singapore')
  })

  it('when DATABASE_URL and DB_* are both set, then DATABASE_URL wins', () => {
    const config = parseConfig({ DATABASE_URL: 'postgresql://a@h/d', DB_HOST: 'other', DB_USER: 'u', DB_NAME: 'n' })
    assert.equal(config.database.kind === 'postgres' && config.database.url, 'postgresql://a@h/d')
  })

  it('when LOG_LEVEL is set, then it wins over SERVER_DEBUG', () => {
    assert.equal(parseConfig({ LOG_LEVEL: 'warn', SERVER_DEBUG: 'true' }).log.level, 'warn')
  })

  it('when a variable is empty, then it counts as unset', () => {
    assert.equal(parseConfig({ DATABASE_URL: '', SERVER_PORT: '' }).server.port, 8080)
    assert.equal(parseConfig({ DATABASE_URL: '' }).database.kind, 'embedded')
  })

  it('when DB_EMBEDDED_PATH is set, then the embedded database lives there', () => {
    assert.deepEqual(parseConfig({ DB_EMBEDDED_PATH: 'memory://' }).database, {
      kind: 'embedded',
      path: 'memory://',
      debug: false,
    })
  })

  it('when the result is returned, then it is frozen all the way down', () => {
    const config = parseConfig({})
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.server) && Object.isFrozen(config.database))
    assert.throws(() => {
      ;(config.server as { port: number }).port = 1
    }, TypeError)
  })

  it('when several values are bad, then one error names every bad variable and what it expects', () => {
    assert.deepEqual(
      [
        ...problemsOf({
          SERVER_PORT: 'eighty',
          SERVER_TIMEOUT_READ: '3 seconds',
          SERVER_DEBUG: 'yes',
          DB_POOL_MAX: '0',
          LOG_LEVEL: 'verbose',
          DB_SSLMODE: 'always',
          SERVER_BODY_LIMIT: '10',
          SERVER_MAX_PIPELINED: '0',
        }),
      ].sort(),
      [
        'DB_POOL_MAX: must be >= 1 (got "0")',
        'DB_SSLMODE: must be one of disable, prefer, require, verify-full (got "always")',
        'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "verbose")',
        'SERVER_BODY_LIMIT: must be >= 1024 (got "10")',
        'SERVER_DEBUG: must be true or false (got "yes")',
        'SERVER_MAX_PIPELINED: must be >= 1 (got "0")',
        'SERVER_PORT: must be an integer (got "eighty")',
        'SERVER_TIMEOUT_READ: must be a Go duration such as 3s, 250ms or 1m30s (got "3 seconds")',
      ],
    )
  })

  it('when a port is out of range, then the limit is named', () => {
    assert.deepEqual(problemsOf({ SERVER_PORT: '70000', DB_PORT: '0' }), [
      'SERVER_PORT: must be <= 65535 (got "70000")',
      'DB_PORT: must be >= 1 (got "0")',
    ])
  })

  it('when DB_* is incomplete, then the missing ones are named', () => {
    assert.deepEqual(problemsOf({ DB_HOST: 'db' }), [
      'DB_USER: required when any of DB_HOST, DB_USER, DB_NAME is set',
      'DB_NAME: required when any of DB_HOST, DB_USER, DB_NAME is set',
    ])
  })

  it('when DATABASE_URL is not a PostgreSQL URL, then the error says so without echoing it', () => {
    const problems = problemsOf({ DATABASE_URL: 'mysql://root:hunter2@db/app' })
    assert.deepEqual(problems, ['DATABASE_URL: must be a postgres:// or postgresql:// URL'])
    assert.doesNotMatch(problems.join(), /hunter2/)
  })

  it('when WEB_CONCURRENCY asks for several workers on the embedded database, then it is refused', () => {
    assert.match(problemsOf({ WEB_CONCURRENCY: '2' }).join('\n'), /^WEB_CONCURRENCY: .*PostgreSQL server/m)
    assert.equal(parseConfig({ WEB_CONCURRENCY: '2', DATABASE_URL: 'postgres://u@db/app' }).server.workers, 2)
  })

  it('when TZ is not a time zone, then it is rejected', () => {
    assert.deepEqual(problemsOf({ TZ: 'Mars/Olympus' }), [
      'TZ: must be an IANA time zone such as UTC or Asia/Singapore (got "Mars/Olympus")',
    ])
  })

  it('when the config is described for the log, then no password or URL appears', () => {
    const described = JSON.stringify(
      describeConfig(parseConfig({ DB_HOST: 'db', DB_USER: 'u', DB_PASS: 'hunter2', DB_NAME: 'books' })),
    )
    assert.doesNotMatch(described, /hunter2|postgres:\/\//)
    assert.match(described, /"host":"db"/)
    assert.match(described, /"name":"books"/)
  })

  it('when a variable is added to the schema, then it is documented in .env.example', async () => {
    const { readFileSync } = await import('node:fs')
    const example = readFileSync(new URL('../../../.env.example', import.meta.url), 'utf8')
    for (const name of Object.keys(EnvSchema.properties)) {
      assert.match(example, new RegExp(`^#? ?${name}=`, 'm'), `${name} is in .env.example`)
    }
  })
})

describe('readEnvironment', () => {
  it('when a .env file exists, then its values are used and real variables win', () => {
    const folder = mkdtempSync(join(tmpdir(), 'myapp-env-'))
    const path = join(folder, '.env')
    writeFileSync(path, 'SERVER_PORT=9000\nDB_NAME="from file"\n# comment\n')
    const env = readEnvironment({ SERVER_PORT: '7000' }, path)
    assert.equal(env.SERVER_PORT, '7000')
    assert.equal(env.DB_NAME, 'from file')
  })

  it('when there is no .env file, then only the real variables are used', () => {
    assert.deepEqual(readEnvironment({ A: '1' }, join(tmpdir(), 'no-such-dir', '.env')), { A: '1' })
  })
})

describe('parseDuration', () => {
  for (const [text, ms] of [
    ['0', 0],
    ['250ms', 250],
    ['3s', 3000],
    ['1.5s', 1500],
    ['1m30s', 90_000],
    ['2h', 7_200_000],
    ['1500us', 1.5],
    ['1000000ns', 1],
  ] as const) {
    it(`when given "${text}", then ${ms} ms`, () => assert.equal(parseDuration(text), ms))
  }
  for (const text of ['', '3', '3 s', '-1s', 's', '1d', '1.s']) {
    it(`when given "${text}", then it throws`, () => assert.throws(() => parseDuration(text), /invalid duration/))
  }
})

describe('authentication settings', () => {
  it('when APP_ENV=production has no authentication, then start-up refuses unless AUTH_ALLOW_NONE', () => {
    assert.deepEqual(problemsOf({ APP_ENV: 'production' }), [
      'AUTH_MODE: must be jwt when APP_ENV=production (or set AUTH_ALLOW_NONE=true to run without authentication)',
    ])
    assert.equal(parseConfig({ APP_ENV: 'production', AUTH_ALLOW_NONE: 'true' }).auth.mode, 'none')
  })

  it('when AUTH_MODE=jwt lacks its settings, then each missing one is named', () => {
    assert.deepEqual(problemsOf({ AUTH_MODE: 'jwt', AUTH_JWT_ALGORITHMS: 'HS256' }), [
      'AUTH_JWT_ALGORITHMS: must list RS*, PS*, ES* or EdDSA algorithms (got "HS256")',
      'AUTH_JWT_ISSUER: required when AUTH_MODE=jwt',
      'AUTH_JWT_AUDIENCE: required when AUTH_MODE=jwt',
      'AUTH_JWT_JWKS_URL: set exactly one of AUTH_JWT_JWKS_URL and AUTH_JWT_PUBLIC_KEY when AUTH_MODE=jwt',
    ])
  })

  it('when AUTH_MODE=jwt is complete, then the verifier settings are parsed', () => {
    const config = parseConfig({
      APP_ENV: 'production',
      AUTH_MODE: 'jwt',
      AUTH_JWT_ISSUER: 'https://auth.example.com/',
      AUTH_JWT_AUDIENCE: 'myapp',
      AUTH_JWT_JWKS_URL: 'https://auth.example.com/jwks.json',
      AUTH_JWT_ALGORITHMS: 'RS256,ES256',
      AUTH_CLOCK_SKEW: '1m',
    })
    assert.deepEqual(config.auth, {
      mode: 'jwt',
      issuer: 'https://auth.example.com/',
      audience: 'myapp',
      jwksUrl: 'https://auth.example.com/jwks.json',
      publicKey: undefined,
      algorithms: ['RS256', 'ES256'],
      clockSkewSeconds: 60,
      publicReads: false,
    })
  })
})

describe('rate limit settings', () => {
  it('when the limits are set, then the request budget and the budget of refused tokens are parsed', () => {
    const config = parseConfig({
      RATE_LIMIT_MAX: '100',
      RATE_LIMIT_WINDOW: '30s',
      AUTH_FAILURE_LIMIT: '5',
      AUTH_FAILURE_WINDOW: '15m',
      REDIS_URL: 'redis://:secret@cache:6379',
    })
    assert.deepEqual(config.rateLimit, {
      max: 100,
      windowMs: 30_000,
      redisUrl: 'redis://:secret@cache:6379',
      namespace: 'myapp-rate-limit:',
      authFailures: { max: 5, windowMs: 900_000 },
    })
    assert.equal(parseConfig({ AUTH_FAILURE_LIMIT: '0' }).rateLimit.authFailures.max, 0)
    assert.doesNotMatch(JSON.stringify(describeConfig(config)), /secret/)
  })

  it('when the budget of refused tokens is bad, then each variable is named', () => {
    assert.deepEqual(problemsOf({ AUTH_FAILURE_LIMIT: '-1', AUTH_FAILURE_WINDOW: '1 minute' }), [
      'AUTH_FAILURE_LIMIT: must be >= 0 (got "-1")',
      'AUTH_FAILURE_WINDOW: must be a Go duration such as 3s, 250ms or 1m30s (got "1 minute")',
    ])
    assert.deepEqual(problemsOf({ AUTH_FAILURE_LIMIT: 'twenty' }), [
      'AUTH_FAILURE_LIMIT: must be an integer (got "twenty")',
    ])
  })
})

describe('SERVER_TRUST_PROXY', () => {
  it('when it lists addresses and CIDR ranges of either family, then each is kept as written, spaces trimmed', () => {
    assert.deepEqual(
      parseConfig({ SERVER_TRUST_PROXY: '10.0.0.5, 10.42.0.0/16,fd00::/8 , ::1,::ffff:192.0.2.1' }).server.trustProxy,
      ['10.0.0.5', '10.42.0.0/16', 'fd00::/8', '::1', '::ffff:192.0.2.1'],
    )
    assert.deepEqual(parseConfig({ SERVER_TRUST_PROXY: '0.0.0.0/1,128.0.0.0/32,::/128' }).server.trustProxy, [
      '0.0.0.0/1',
      '128.0.0.0/32',
      '::/128',
    ])
  })

  it('when it is a whole number, then it is a hop count', () => {
    assert.equal(parseConfig({ SERVER_TRUST_PROXY: '1' }).server.trustProxy, 1)
    assert.equal(parseConfig({ SERVER_TRUST_PROXY: ' 2 ' }).server.trustProxy, 2)
  })

  it('when it is unset or empty, then no proxy is trusted', () => {
    assert.equal(parseConfig({}).server.trustProxy, false)
    assert.equal(parseConfig({ SERVER_TRUST_PROXY: '' }).server.trustProxy, false)
  })

  it('when entries are bad, then each bad entry is named and the good ones are not', () => {
    assert.deepEqual(problemsOf({ SERVER_TRUST_PROXY: '10.0.0.5,10.0.0.300,10.0.0.0/33,fd00::/129,nginx' }), [
      'SERVER_TRUST_PROXY: "10.0.0.300" is not an IPv4 or IPv6 address or CIDR range (such as 10.0.0.5, 10.0.0.0/8 or fd00::/8), nor a hop count',
      'SERVER_TRUST_PROXY: "10.0.0.0/33" needs a prefix length from 1 to 32',
      'SERVER_TRUST_PROXY: "fd00::/129" needs a prefix length from 1 to 128',
      'SERVER_TRUST_PROXY: "nginx" is not an IPv4 or IPv6 address or CIDR range (such as 10.0.0.5, 10.0.0.0/8 or fd00::/8), nor a hop count',
    ])
  })

  for (const [value, problem] of [
    ['0', 'SERVER_TRUST_PROXY: a hop count must be 1 or more; leave it unset to trust no proxy'],
    ['0.0.0.0/0', 'SERVER_TRUST_PROXY: "0.0.0.0/0" needs a prefix length from 1 to 32'],
    ['::/0', 'SERVER_TRUST_PROXY: "::/0" needs a prefix length from 1 to 128'],
    ['10.0.0.0/255.0.0.0', 'SERVER_TRUST_PROXY: "10.0.0.0/255.0.0.0" needs a prefix length from 1 to 32'],
    ['10.0.0.0/8/8', 'SERVER_TRUST_PROXY: "10.0.0.0/8/8" is not an IPv4 or IPv6 address or CIDR range'],
    ['10.0.0.1,', 'SERVER_TRUST_PROXY: an entry is empty'],
    ['1,10.0.0.1', 'SERVER_TRUST_PROXY: "1" is not an IPv4 or IPv6 address or CIDR range'],
    ['true', 'SERVER_TRUST_PROXY: "true" is not an IPv4 or IPv6 address or CIDR range'],
    ['loopback', 'SERVER_TRUST_PROXY: "loopback" is not an IPv4 or IPv6 address or CIDR range'],
    ['127.000.0.1', 'SERVER_TRUST_PROXY: "127.000.0.1" is not an IPv4 or IPv6 address or CIDR range'],
    ['-1', 'SERVER_TRUST_PROXY: "-1" is not an IPv4 or IPv6 address or CIDR range'],
  ] as const) {
    it(`when it is "${value}", then start-up is refused and the entry is named`, () => {
      const problems = problemsOf({ SERVER_TRUST_PROXY: value })
      assert.equal(problems.length, 1, String(problems))
      assert.ok(problems[0]?.startsWith(problem), problems[0])
    })
  }
})

describe('database TLS settings', () => {
  const urlOf = (env: Record<string, string>) => {
    const { database } = parseConfig(env)
    assert.equal(database.kind, 'postgres')
    return database.kind === 'postgres' ? database.url : ''
  }

  it('when DB_SSLMODE and DB_SSLROOTCERT are set with a DATABASE_URL, then the URL carries both', () => {
    const url = new URL(
      urlOf({
        DATABASE_URL: 'postgresql://app:pw@myapp-db-rw.myapp-dev:5432/myapp',
        DB_SSLMODE: 'verify-full',
        DB_SSLROOTCERT: '/etc/myapp/db-ca/ca.crt',
      }),
    )
    assert.equal(url.searchParams.get('sslmode'), 'verify-full')
    assert.equal(url.searchParams.get('sslrootcert'), '/etc/myapp/db-ca/ca.crt')
    assert.equal(url.hostname, 'myapp-db-rw.myapp-dev')
  })

  it('when the DATABASE_URL names its own sslmode, then the stricter of it and DB_SSLMODE applies', () => {
    const mode = (url: string, sslMode?: string) =>
      new URL(urlOf({ DATABASE_URL: url, ...(sslMode ? { DB_SSLMODE: sslMode } : {}) })).searchParams.get('sslmode')
    assert.equal(mode('postgres://a@h/d?sslmode=require'), 'require')
    assert.equal(mode('postgres://a@h/d?sslmode=require', 'disable'), 'require')
    assert.equal(mode('postgres://a@h/d?sslmode=disable', 'verify-full'), 'verify-full')
    assert.equal(mode('postgres://a@h/d?sslmode=verify-full', 'require'), 'verify-full')
    assert.equal(mode('postgres://a@h/d', 'prefer'), 'prefer')
    assert.equal(mode('postgres://a@h/d'), null)
  })

  it('when DB_* are used, then DB_SSLROOTCERT reaches the URL as sslrootcert', () => {
    const url = new URL(
      urlOf({ DB_HOST: 'db', DB_USER: 'u', DB_NAME: 'n', DB_SSLMODE: 'verify-full', DB_SSLROOTCERT: '/ca.crt' }),
    )
    assert.deepEqual(Object.fromEntries(url.searchParams), { sslmode: 'verify-full', sslrootcert: '/ca.crt' })
  })

  it('when DB_SSLROOTCERT is set without verify-full, then start-up is refused', () => {
    assert.deepEqual(problemsOf({ DATABASE_URL: 'postgres://a@h/d', DB_SSLROOTCERT: '/ca.crt' }), [
      'DB_SSLROOTCERT: is used only with DB_SSLMODE=verify-full',
    ])
  })
})

describe('configuration sections', () => {
  const sections = [
    ServerEnvSchema,
    ObservabilityEnvSchema,
    DatabaseEnvSchema,
    AuthEnvSchema,
    LimitsEnvSchema,
    ApiEnvSchema,
    EventsEnvSchema,
  ]
  const wording = (name: string) => EnvSchema.properties[name as keyof typeof EnvSchema.properties] as ProblemWording

  it('when the sections are composed, then every variable belongs to exactly one of them', () => {
    const names = sections.flatMap((section) => Object.keys(section.properties))
    assert.equal(new Set(names).size, names.length, 'no variable is declared twice (the later one would win silently)')
    assert.deepEqual([...names].sort(), Object.keys(EnvSchema.properties).sort())
  })

  it('when a variable has a pattern, then it declares the words a mismatch is reported with', () => {
    for (const [name, schema] of Object.entries(EnvSchema.properties)) {
      if (!('pattern' in schema)) continue
      assert.match(String(wording(name).patternMessage), /^must /, `${name} explains its pattern`)
    }
  })

  it('when schema violations and every section rule are broken together, then one list reads VARIABLE: rule', () => {
    assert.deepEqual(
      problemsOf({
        SERVER_PORT: 'eighty',
        AUTH_JWT_ALGORITHMS: 'HS256',
        WEB_CONCURRENCY: '2',
        TZ: 'Mars/Olympus',
        DB_USER: 'u',
        DB_SSLROOTCERT: '/ca.crt',
        APP_ENV: 'production',
      }),
      [
        'SERVER_PORT: must be an integer (got "eighty")',
        'AUTH_JWT_ALGORITHMS: must list RS*, PS*, ES* or EdDSA algorithms (got "HS256")',
        'WEB_CONCURRENCY: more than one worker needs a PostgreSQL server (the embedded database is one process)',
        'TZ: must be an IANA time zone such as UTC or Asia/Singapore (got "Mars/Olympus")',
        'DB_HOST: required when any of DB_HOST, DB_USER, DB_NAME is set',
        'DB_NAME: required when any of DB_HOST, DB_USER, DB_NAME is set',
        'DB_SSLROOTCERT: is used only with DB_SSLMODE=verify-full',
        'AUTH_MODE: must be jwt when APP_ENV=production (or set AUTH_ALLOW_NONE=true to run without authentication)',
      ],
    )
  })

  it('when GRPC_PORT is set, then the gRPC listener is on; at SERVER_PORT, it is refused', () => {
    assert.equal(parseConfig({ GRPC_PORT: '9090' }).server.grpcPort, 9090)
    assert.equal(parseConfig({ GRPC_PORT: '0' }).server.grpcPort, undefined)
    assert.throws(
      () => parseConfig({ GRPC_PORT: '8080', SERVER_PORT: '8080' }),
      (error: Error) => /GRPC_PORT: must differ from SERVER_PORT/.test(error.message),
    )
  })

  it('when a problem would show a secret value, then the one formatter leaves it out, whoever found the problem', () => {
    const secrets = Object.keys(EnvSchema.properties).filter((name) => wording(name).secret === true)
    assert.deepEqual(secrets.sort(), [
      'AUTH_JWT_PUBLIC_KEY',
      'DATABASE_URL',
      'DB_PASS',
      'NATS_PASS',
      'NATS_TOKEN',
      'NATS_URL',
      'OTEL_EXPORTER_OTLP_HEADERS',
      'REDIS_URL',
    ])
    for (const name of secrets) {
      assert.deepEqual(
        formatProblems([problem(name, 'is bad', { showValue: true })], EnvSchema, { [name]: 'hunter2' }),
        [`${name}: is bad`],
      )
    }
    assert.deepEqual(formatProblems([problem('TZ', 'is bad', { showValue: true })], EnvSchema, { TZ: 'Mars' }), [
      'TZ: is bad (got "Mars")',
    ])
    assert.deepEqual(problemsOf({ DATABASE_URL: 'postgres://u:hunter2@[::1/app' }), [
      'DATABASE_URL: must be a valid URL',
    ])
  })

  it('when the variables are described, then none names a resource, since each route declares its own access', () => {
    const descriptionOf = (schema: object) => String((schema as { description?: string }).description)
    for (const [name, schema] of Object.entries(EnvSchema.properties)) {
      assert.doesNotMatch(descriptionOf(schema), /books/i, name)
    }
    assert.match(descriptionOf(EnvSchema.properties.AUTH_MODE), /\/v1 routes that declare a scope/)
  })
})
