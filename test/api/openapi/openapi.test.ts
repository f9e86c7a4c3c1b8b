// The OpenAPI document: served, committed, current, lint-clean, and describing every route the server has.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { after, before, it } from 'node:test'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { generateOpenApi, OPENAPI_TYPES, OPENAPI_YAML } from '../../../scripts/openapi.ts'
import { BookService } from '../../../src/gen/books/v1/books_pb.js'
import { describe } from '../../helpers/describe.ts'
import { bodyOf, startService, type TestService } from '../../helpers/service.ts'

const run = promisify(execFile)
const REDOCLY = new URL('../../../node_modules/.bin/redocly', import.meta.url).pathname
const METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT']
const SOME_ID = '01900000-0000-7000-8000-000000000000'

/** Every path and method Fastify's router knows, read from printRoutes(). */
function routerRoutes(tree: string): { path: string; methods: string[] }[] {
  const routes: { path: string; methods: string[] }[] = []
  const stack: string[] = []
  for (const line of tree.split('\n')) {
    const match = /^([│ ]*)[├└]── (\S+)(?: \(([A-Z, -]+)\))?$/.exec(line)
    if (match === null) continue
    const depth = (match[1] as string).length / 4
    stack.length = depth
    stack.push(match[2] as string)
    if (match[3] !== undefined) routes.push({ path: stack.join(''), methods: match[3].split(', ') })
  }
  return routes
}

describe('the OpenAPI document', () => {
  let service: TestService
  let generated: { yaml: string; types: string }
  before(async () => {
    service = await startService('embedded')
    generated = await generateOpenApi()
  })
  after(() => service?.close())

  it('when /openapi.json is fetched, then it is the OpenAPI 3.1 document committed as openapi.yaml', async () => {
    const response = await service.fetch('/openapi.json')
    assert.equal(response.status, 200)
    const document = await bodyOf(response)
    assert.equal(document.openapi, '3.1.0')
    assert.equal(document.info.version, JSON.parse(readFileSync('package.json', 'utf8')).version)
    assert.deepEqual(document, parse(readFileSync(OPENAPI_YAML, 'utf8')))
    const yaml = await service.fetch('/openapi.yaml')
    assert.match(yaml.headers.get('content-type') ?? '', /^application\/yaml/)
    assert.equal(await yaml.text(), readFileSync(OPENAPI_YAML, 'utf8'))
  })

  it('when the route schemas change, then the committed openapi.yaml must be regenerated (npm run openapi)', () => {
    assert.equal(readFileSync(OPENAPI_YAML, 'utf8'), generated.yaml, 'openapi.yaml is stale: run npm run openapi')
    assert.equal(readFileSync(OPENAPI_TYPES, 'utf8'), generated.types, 'openapi types are stale: run npm run openapi')
  })

  it('when linted with Redocly (recommended rules), then there are no errors', async () => {
    const { stdout, stderr } = await run(REDOCLY, ['lint', OPENAPI_YAML.pathname, '--format=summary'], {
      cwd: new URL('../../../', import.meta.url).pathname,
    }).catch((error: { stdout: string; stderr: string }) =>
      assert.fail(`redocly lint failed:\n${error.stdout}${error.stderr}`),
    )
    assert.match(stdout + stderr, /valid/)
  })

  it('when compared with the router, then every route that answers is documented and nothing else is', async () => {
    const RPC_PROCEDURES = new Set(BookService.methods.map((method) => `/${BookService.typeName}/${method.name}`))
    const document = parse(readFileSync(OPENAPI_YAML, 'utf8')) as { paths: Record<string, Record<string, unknown>> }
    const documented = new Set(
      Object.entries(document.paths).flatMap(([path, operations]) =>
        Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
      ),
    )
    const served = new Set<string>()
    for (const { path, methods } of routerRoutes(service.app.printRoutes({ commonPrefix: false }))) {
      // The documents themselves: the AsyncAPI one describes the events, not routes.
      if (path.startsWith('/docs') || path.startsWith('/openapi.') || path.startsWith('/asyncapi.')) continue
      // RPC procedures are the .proto's to describe (proto/books/v1/books.proto), not this document's.
      if (RPC_PROCEDURES.has(path)) continue
      for (const method of methods.filter((name) => METHODS.includes(name) && name !== 'HEAD')) {
        const url = path.replace(':id', SOME_ID)
        // A streaming route (GET /v1/events) never ends its body: its status is known once its headers are sent.
        const response = await service.app.inject({ method: method as 'GET', url, payloadAsStream: true })
        response.stream().destroy()
        if (response.statusCode !== 405) served.add(`${method} ${path.replace(/:(\w+)/g, '{$1}')}`)
      }
    }
    assert.ok(served.size >= 7, `found ${[...served]}`)
    assert.deepEqual([...served].sort(), [...documented].sort())
  })
})

describe('the docs page', () => {
  it('when DOCS_ENABLED is on (the default), then /docs serves Swagger UI from the service itself', async () => {
    const service = await startService('embedded')
    try {
      const page = await service.fetch('/docs/')
      assert.equal(page.status, 200)
      const html = await page.text()
      const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] as string)
      assert.ok(assets.length >= 3)
      for (const asset of assets) {
        assert.doesNotMatch(asset, /^(https?:)?\/\//, `${asset} must be served locally`)
        assert.equal((await service.fetch(new URL(asset, `${service.baseUrl}/docs/`).pathname)).status, 200, asset)
      }
    } finally {
      await service.close()
    }
  })

  it('when DOCS_ENABLED=false, then /docs is not served but the document still is', async () => {
    const service = await startService('embedded', { DOCS_ENABLED: 'false' })
    try {
      assert.equal((await service.fetch('/docs/')).status, 404)
      assert.equal((await service.fetch('/openapi.json')).status, 200)
    } finally {
      await service.close()
    }
  })
})
