// The architecture rules can fail: `npm run lint:architecture`, with the repository's own configuration, runs on a
// small tree that breaks each rule once and keeps each allowance once. That the real tree passes is lint's job.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, before, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { describe } from '../../helpers/describe.ts'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
const script = packageJson.scripts['lint:architecture'] as string

// Each file of the fixture, by path; the comment on a file names the rule it breaks or the allowance it relies on.
const FIXTURE: Record<string, string> = {
  // shared-names-no-resource: the HTTP layer naming a resource
  'src/http/pipeline/knows-books.ts': "import { book } from '../../books/model.ts'\nexport const name = book\n",
  // shared-names-no-resource: a shared layer naming the app level
  'src/jobs/to-app.ts': "import { service } from '../service.ts'\nexport const used = service\n",
  'src/service.ts': "export const service = 'service'\n",
  // allowed: the shared layers, a type of the Database seam, a builtin and an npm package
  'src/http/pipeline/allowed.ts': [
    "import { STATUS_CODES } from 'node:http'",
    "import type { FastifyInstance } from 'fastify'",
    "import type { Database } from '../../db/database.ts'",
    "import { level } from '../../logger.ts'",
    'export type Both = [FastifyInstance, Database]',
    'export const text = [STATUS_CODES, level]',
    '',
  ].join('\n'),
  // http-uses-db-types-only; reading what a database error means is allowed
  'src/http/pipeline/opens-db.ts':
    "import { open } from '../../db/open.ts'\nimport { classify } from '../../db/errors.ts'\n" +
    'export const use = [open, classify]\n',
  'src/db/database.ts': 'export interface Database { query(text: string): Promise<unknown[]> }\n',
  'src/db/open.ts':
    "import type { Database } from './database.ts'\nexport const open = (): Database | undefined => undefined\n",
  'src/db/errors.ts': 'export const classify = (error: unknown) => error instanceof Error\n',
  // allowed: what a resource builds on
  'src/http/toolkit/kit.ts': "export const kit = 'kit'\n",
  'src/rpc/toolkit/calls.ts': "export const calls = 'calls'\n",
  // rest-not-to-rpc: the HTTP layer on the RPC one
  'src/http/pipeline/to-rpc.ts': "import { calls } from '../../rpc/toolkit/calls.ts'\nexport const used = calls\n",
  // rpc-not-to-rest: the RPC layer on the HTTP one
  'src/rpc/toolkit/to-http.ts': "import { kit } from '../../http/toolkit/kit.ts'\nexport const used = kit\n",
  'src/logger.ts': "export const level = 'info'\n",
  'src/books/model.ts': "export const book = 'book'\n",
  // core-knows-no-transport, three times: an npm package of Fastify's (in types only), src/http and src/rpc
  'src/books/core.ts': "import type { FastifyInstance } from 'fastify'\nexport type App = FastifyInstance\n",
  'src/books/use-case.ts': "import { kit } from '../http/toolkit/kit.ts'\nexport const answer = kit\n",
  'src/books/calls.ts': "import { calls } from '../rpc/toolkit/calls.ts'\nexport const answer = calls\n",
  // core-records-events-only; recording through the outbox is allowed
  'src/books/repository.ts':
    "import { record } from '../events/outbox.ts'\nimport { relay } from '../events/relay.ts'\n" +
    'export const used = [record, relay]\n',
  'src/events/outbox.ts': "export const record = 'record'\n",
  'src/events/relay.ts': "export const relay = 'relay'\n",
  // events-knows-no-core (and shared-names-no-resource)
  'src/events/feed.ts': "import { book } from '../books/model.ts'\nexport const used = book\n",
  // allowed: the REST adapter on Fastify and the toolkit
  'src/books/http/plugin.ts':
    "import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'\n" +
    "import { kit } from '../../http/toolkit/kit.ts'\nexport type Plugin = FastifyPluginAsyncTypebox\n" +
    'export const answer = kit\n',
  // rest-not-to-rpc: a resource's REST adapter on RPC
  'src/books/http/to-rpc.ts': "import { calls } from '../../rpc/toolkit/calls.ts'\nexport const answer = calls\n",
  // allowed: the resource's assembly brings its adapters together
  'src/books/resource.ts':
    "import { answer } from './http/plugin.ts'\nimport { calls } from '../rpc/toolkit/calls.ts'\n" +
    'export const books = [answer, calls]\n',
  // resource-uses-the-toolkits: a pipeline plugin is the app's to wire
  'src/books/http/wires.ts': "import { text } from '../../http/pipeline/allowed.ts'\nexport const answer = text\n",
  // resources-do-not-know-each-other
  'src/authors/uses-books.ts': "import { book } from '../books/model.ts'\nexport const answer = book\n",
  // observability-and-probes-not-to-the-pipeline, twice; the toolkit is allowed
  'src/health/probe.ts':
    "import { kit } from '../http/toolkit/kit.ts'\nimport { text } from '../http/pipeline/allowed.ts'\n" +
    'export const answer = [kit, text]\n',
  'src/observability/http.ts': "import { text } from '../http/pipeline/allowed.ts'\nexport const answer = text\n",
  // admission-is-transport-neutral
  'src/admission/hook.ts': "import type { FastifyInstance } from 'fastify'\nexport type App = FastifyInstance\n",
  // no-circular (reported once, from its first module), through a type-only import one way and a dynamic import back
  'src/cycle/a.ts': "import type { B } from './b.ts'\nexport type A = { b?: B }\n",
  'src/cycle/b.ts': "export type B = number\nexport const load = () => import('./a.ts')\n",
  // a-service-knows-only-the-shared-layers, twice: a resource and the app level; the contract and logger are allowed
  'src/verifier/check.ts':
    "import { book } from '../books/model.ts'\nimport { service } from '../service.ts'\n" +
    "import { level } from '../logger.ts'\nexport const used = [book, service, level]\n",
  // no-one-imports-a-service
  'src/jobs/to-verifier.ts': "import { used } from '../verifier/check.ts'\nexport const again = used\n",
  // src-not-to-test
  'src/uses-test.ts': "import { helper } from '../test/helper.ts'\nexport const used = helper\n",
  // not-to-unresolvable
  'src/missing.ts': "import { gone } from './gone.ts'\nexport const used = gone\n",
  // bench-not-to-test
  'bench/run.ts': "import { helper } from '../test/helper.ts'\nexport const used = helper\n",
  'scripts/tool.ts': "import { book } from '../src/books/model.ts'\nexport const used = book\n",
  'test/helper.ts': "export const helper = 'helper'\n",
}

const EXPECTED = [
  'a-service-knows-only-the-shared-layers: src/verifier/check.ts → src/books/model.ts',
  'a-service-knows-only-the-shared-layers: src/verifier/check.ts → src/service.ts',
  'admission-is-transport-neutral: src/admission/hook.ts → node_modules/fastify/fastify.js',
  'bench-not-to-test: bench/run.ts → test/helper.ts',
  'core-knows-no-transport: src/books/calls.ts → src/rpc/toolkit/calls.ts',
  'core-knows-no-transport: src/books/core.ts → node_modules/fastify/fastify.js',
  'core-knows-no-transport: src/books/use-case.ts → src/http/toolkit/kit.ts',
  'core-records-events-only: src/books/repository.ts → src/events/relay.ts',
  'events-knows-no-core: src/events/feed.ts → src/books/model.ts',
  'http-uses-db-types-only: src/http/pipeline/opens-db.ts → src/db/open.ts',
  'no-circular: src/cycle/a.ts → src/cycle/b.ts',
  'no-one-imports-a-service: src/jobs/to-verifier.ts → src/verifier/check.ts',
  'not-to-unresolvable: src/missing.ts → ./gone.ts',
  'observability-and-probes-not-to-the-pipeline: src/health/probe.ts → src/http/pipeline/allowed.ts',
  'observability-and-probes-not-to-the-pipeline: src/observability/http.ts → src/http/pipeline/allowed.ts',
  'resource-uses-the-toolkits: src/books/http/wires.ts → src/http/pipeline/allowed.ts',
  'resources-do-not-know-each-other: src/authors/uses-books.ts → src/books/model.ts',
  'resources-do-not-know-each-other: src/verifier/check.ts → src/books/model.ts',
  'rest-not-to-rpc: src/books/http/to-rpc.ts → src/rpc/toolkit/calls.ts',
  'rest-not-to-rpc: src/http/pipeline/to-rpc.ts → src/rpc/toolkit/calls.ts',
  'rpc-not-to-rest: src/rpc/toolkit/to-http.ts → src/http/toolkit/kit.ts',
  'shared-names-no-resource: src/events/feed.ts → src/books/model.ts',
  'shared-names-no-resource: src/http/pipeline/knows-books.ts → src/books/model.ts',
  'shared-names-no-resource: src/jobs/to-app.ts → src/service.ts',
  'shared-names-no-resource: src/jobs/to-verifier.ts → src/verifier/check.ts',
  'src-not-to-test: src/uses-test.ts → test/helper.ts',
]

interface Violation {
  rule: { name: string }
  from: string
  to: string
}

describe('npm run lint:architecture', () => {
  let folder: string
  before(() => {
    folder = mkdtempSync(join(tmpdir(), 'architecture-'))
    for (const [path, text] of Object.entries(FIXTURE)) {
      mkdirSync(join(folder, dirname(path)), { recursive: true })
      writeFileSync(join(folder, path), text)
    }
    for (const file of ['.dependency-cruiser.cjs', 'tsconfig.json']) copyFileSync(join(ROOT, file), join(folder, file))
    symlinkSync(join(ROOT, 'node_modules'), join(folder, 'node_modules'))
  })
  after(() => rmSync(folder, { recursive: true, force: true }))

  // The script's own command line, as npm runs it: node_modules/.bin first on PATH.
  const lintArchitecture = (...options: string[]) =>
    spawnSync('sh', ['-c', [script, ...options].join(' ')], {
      cwd: folder,
      env: { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` },
      encoding: 'utf8',
    })

  it('when a tree breaks each rule once, then exactly those imports are reported, each under its rule', () => {
    const result = lintArchitecture('--output-type', 'json')
    // The JSON reporter only describes; the exit code is the next test's, with the script's own reporter.
    assert.equal(result.status, 0, result.stderr)
    const { summary } = JSON.parse(result.stdout) as { summary: { violations: Violation[] } }
    // The fixture's node_modules is a link to the repository's, which the resolver reports by its real path.
    const reported = summary.violations
      .map(({ rule, from, to }) => `${rule.name}: ${from} → ${to.replace(/^.*\/node_modules\//, 'node_modules/')}`)
      .sort()
    assert.deepEqual(reported, EXPECTED)
  })

  it('when a tree breaks a rule, then the check exits non-zero, so the lint fails', () => {
    const result = lintArchitecture()
    assert.notEqual(result.status, 0)
    assert.match(result.stdout, new RegExp(`${EXPECTED.length} dependency violations`))
  })
})
