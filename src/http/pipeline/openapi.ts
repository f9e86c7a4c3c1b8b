// The OpenAPI 3.1 document, generated from the routes' own TypeBox schemas, and the offline docs page.
import swagger from '@fastify/swagger'
import type { FastifyInstance } from 'fastify'
import type { TSchema } from 'typebox'
import packageJson from '../../../package.json' with { type: 'json' }
import { declareOperations, PUBLIC } from '../toolkit/operation.ts'
import { Problem } from '../toolkit/problem.ts'
import type { DocumentTag } from '../toolkit/resource.ts'
import { problemDocs } from '../toolkit/responses.ts'
import { routesServing } from './operations.ts'

// The documents and the page are no API call: open, and neither counted in a budget nor shed.
const { openApiDocument, documentationPage } = declareOperations({
  openApiDocument: { summary: 'The OpenAPI document', access: PUBLIC, effect: 'read', limit: 'probe' },
  documentationPage: { summary: 'The API docs page and its assets', access: PUBLIC, effect: 'read', limit: 'probe' },
})

/** What the document says about the API as a whole; the app gives it, with the tags and components. */
export interface DocumentInfo {
  title: string
  description: string
}

export interface OpenApiOptions {
  docs: boolean
  info: DocumentInfo
  tags: readonly DocumentTag[]
  /** Schemas named once in components, by title: the resources' and the problem's. */
  components: readonly TSchema[]
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/**
 * Moves each schema whose title is in `titles` into components (its first occurrence) and puts a $ref where it
 * stood. Only named ones: an example such as `errors: { title: '…' }` has a title member too.
 */
function referenceComponents(node: Json, components: Record<string, Json>, titles: ReadonlySet<string>): Json {
  if (Array.isArray(node)) return node.map((item) => referenceComponents(item, components, titles))
  if (node === null || typeof node !== 'object') return node
  const walked = Object.fromEntries(
    Object.entries(node).map(([key, value]) => [key, referenceComponents(value, components, titles)]),
  )
  if (typeof node.title === 'string' && titles.has(node.title)) {
    components[node.title] ??= walked
    return { $ref: `#/components/schemas/${node.title}` }
  }
  return walked
}

/** OpenAPI puts `required` on the header object; the route declarations keep it beside the schema. */
function hoistHeaderRequired(responses: Record<string, { headers?: Record<string, Record<string, Json>> }>) {
  for (const response of Object.values(responses)) {
    for (const header of Object.values(response.headers ?? {})) {
      const schema = header.schema as { required?: boolean }
      if (schema.required === true) {
        header.required = true
        delete schema.required
      }
    }
  }
}

/** A parameter with a default is optional to the client, though the route's schema lists it as required. */
function defaultedParametersOptional(parameters: Record<string, Json>[] = []) {
  for (const parameter of parameters) {
    if ((parameter.schema as { default?: Json }).default !== undefined) parameter.required = false
  }
}

const SECURITY_SCHEMES: Json = {
  bearerAuth: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'With AUTH_MODE=jwt: a token from the configured issuer with the scope the operation names',
  },
}

// Answers the HTTP parser can give to any request, before it reaches a route.
const ANY_REQUEST_RESPONSES = { 431: 'RequestHeaderFieldsTooLarge' } as const

function finishDocument(document: Record<string, Json>, titles: ReadonlySet<string>): Record<string, Json> {
  const paths = document.paths as Record<
    string,
    Record<string, { responses: never; parameters?: Record<string, Json>[] }>
  >
  for (const operations of Object.values(paths)) {
    for (const operation of Object.values(operations)) {
      hoistHeaderRequired(operation.responses)
      defaultedParametersOptional(operation.parameters)
      for (const [status, name] of Object.entries(ANY_REQUEST_RESPONSES)) {
        ;(operation.responses as Record<string, Json>)[status] = { $ref: `#/components/responses/${name}` }
      }
    }
  }
  const schemas: Record<string, Json> = {}
  const referenced = referenceComponents(document.paths as Json, schemas, titles)
  const responses = Object.fromEntries(
    Object.entries(ANY_REQUEST_RESPONSES).map(([status, name]) => {
      const { headers, ...response } = problemDocs({ instance: '/' })(Number(status))[status] as unknown as {
        headers: Record<string, { type: string; description: string; required?: boolean }>
      }
      const openApiHeaders = Object.fromEntries(
        Object.entries(headers).map(([header, { type, ...rest }]) => [header, { schema: { type }, ...rest }]),
      )
      return [
        name,
        referenceComponents(JSON.parse(JSON.stringify({ ...response, headers: openApiHeaders })), schemas, titles),
      ]
    }),
  )
  return { ...document, paths: referenced, components: { schemas, responses, securitySchemes: SECURITY_SCHEMES } }
}

/** Registers document generation; call before any route is added so every route is seen. */
export async function registerOpenApi(app: FastifyInstance, options: OpenApiOptions): Promise<void> {
  const titles = new Set([Problem, ...options.components].map((schema) => String((schema as { title?: string }).title)))
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        ...options.info,
        version: packageJson.version,
        license: { name: packageJson.license, identifier: packageJson.license },
      },
      servers: [{ url: '/', description: 'This server' }],
      // Open by default (AUTH_MODE=none); operations with a scope name the bearer scheme AUTH_MODE=jwt enforces.
      security: [],
      components: { securitySchemes: SECURITY_SCHEMES as never },
      tags: [...options.tags],
    },
    transformObject: (document) =>
      finishDocument(
        ('openapiObject' in document ? document.openapiObject : {}) as Record<string, Json>,
        titles,
      ) as never,
  })

  const hidden = { config: { operation: openApiDocument }, schema: { hide: true } }
  app.get('/openapi.json', hidden, async () => app.swagger())
  app.get('/openapi.yaml', hidden, async (_request, reply) =>
    reply.type('application/yaml; charset=utf-8').send(app.swagger({ yaml: true })),
  )

  if (options.docs) {
    // Swagger UI's assets ship inside the package and are served from /docs/static: no CDN, works offline.
    // Imported only when the page is on: production turns it off (DOCS_ENABLED=false) and skips loading it.
    const { default: swaggerUi } = await import('@fastify/swagger-ui')
    await routesServing(app, documentationPage, () =>
      app.register(swaggerUi, {
        routePrefix: '/docs',
        staticCSP: true,
        // validatorUrl null: the page would otherwise call an online validator.
        uiConfig: {
          tryItOutEnabled: true,
          displayRequestDuration: true,
          defaultModelsExpandDepth: 0,
          validatorUrl: null,
        },
      }),
    )
  }
}
