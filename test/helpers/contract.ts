// Contract check: every response the integration tests receive must be one the committed OpenAPI document declares.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { parse } from 'yaml'

interface Operation {
  responses: Record<
    string,
    { headers?: Record<string, { required?: boolean }>; content?: Record<string, { schema: unknown }> }
  >
}
interface Document {
  paths: Record<string, Record<string, Operation>>
  components: { responses?: Record<string, Operation['responses'][string]> }
}

const document = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as Document
const ajv = new Ajv2020({ strict: false, allErrors: true })
addFormats.default(ajv)
ajv.addSchema(document as object, 'openapi')

// The document itself and its docs page are served but deliberately not described by it.
const UNDESCRIBED = /^\/((open|async)api\.(json|yaml)|docs)(\/|$)/

const escapePointer = (part: string) => part.replaceAll('~', '~0').replaceAll('/', '~1')

const templates = Object.keys(document.paths).map((template) => ({
  template,
  pattern: new RegExp(`^${template.replace(/\{[^/]+\}/g, '[^/]+')}$`),
}))

function validate(pointer: string, body: unknown, what: string) {
  const check = ajv.getSchema(`openapi#${pointer}`)
  assert.ok(check, `no schema at ${pointer}`)
  assert.ok(
    check(body),
    `${what}: body does not match the document:\n${ajv.errorsText(check.errors)}\n${JSON.stringify(body)}`,
  )
}

/** Fails when the response's status, content type, headers or body are not declared for this request. */
export async function assertConformsToContract(method: string, url: string, response: Response): Promise<void> {
  const path = new URL(url, 'http://x').pathname
  if (UNDESCRIBED.test(path)) return
  const what = `${method} ${path} → ${response.status}`
  const mediaType = (response.headers.get('content-type') ?? '').split(';', 1)[0]?.trim() ?? ''
  const text = await response.clone().text()
  const match = templates
    .filter(({ pattern }) => pattern.test(path))
    .sort((a, b) => a.template.length - b.template.length)
  const template = match.find(({ template }) => template === path)?.template ?? match[0]?.template
  const operation = template === undefined ? undefined : document.paths[template]?.[method.toLowerCase()]

  if (operation === undefined) {
    // Unknown route (404) or known route with another method (405): a problem, as every error is.
    assert.ok([404, 405].includes(response.status), `${what}: not in the document`)
    assert.equal(mediaType, 'application/problem+json', what)
    validate('/components/schemas/Problem', JSON.parse(text), what)
    return
  }

  let declared = operation.responses[String(response.status)]
  let pointer = ['', 'paths', template as string, method.toLowerCase(), 'responses', String(response.status)]
    .map(escapePointer)
    .join('/')
  const reference = (declared as { $ref?: string } | undefined)?.$ref
  if (reference !== undefined) {
    pointer = reference.slice(1)
    declared = document.components.responses?.[reference.split('/').pop() as string]
  }
  assert.ok(declared, `${what}: status not declared in openapi.yaml`)
  for (const [name, header] of Object.entries(declared.headers ?? {})) {
    if (header.required) assert.ok(response.headers.has(name), `${what}: missing declared header ${name}`)
  }
  if (declared.content === undefined) {
    assert.equal(text, '', `${what}: declared without a body`)
    return
  }
  if (method === 'HEAD') return
  assert.ok(mediaType in declared.content, `${what}: content type ${mediaType} not declared`)
  const body = mediaType.endsWith('json') ? JSON.parse(text) : text
  validate(`${pointer}/content/${escapePointer(mediaType)}/schema`, body, what)
}
