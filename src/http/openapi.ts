// The OpenAPI 3.1 document, generated from the routes' own TypeBox schemas, and the offline docs page.
import swagger from '@fastify/swagger'
import type { FastifyInstance } from 'fastify'
import packageJson from '../../package.json' with { type: 'json' }
import { problemResponses } from './responses.ts'

export const OPENAPI_INFO = {
  title: 'myapp books API',
  version: packageJson.version,
  description:
    'Books CRUD service: the TypeScript edition of the learning-cloud-native-go myapp API. ' +
    'Errors are RFC 9457 problem details with the `error` / `errors` members the Go service returns.',
  license: { name: packageJson.license, identifier: packageJson.license },
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

// Schemas with these titles are named once in components and referenced everywhere else.
const COMPONENT_TITLES = new Set(['Book', 'BookInput', 'BookReplacement', 'Problem'])

/** Moves each titled schema into components (its first occurrence) and puts a $ref where it stood. */
function referenceComponents(node: Json, components: Record<string, Json>): Json {
  if (Array.isArray(node)) return node.map((item) => referenceComponents(item, components))
  if (node === null || typeof node !== 'object') return node
  const walked = Object.fromEntries(
    Object.entries(node).map(([key, value]) => [key, referenceComponents(value, components)]),
  )
  if (typeof node.title === 'string' && COMPONENT_TITLES.has(node.title)) {
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
    description: 'With AUTH_MODE=jwt: a token from the configured issuer with scope books:read or books:write',
  },
}

/** Operation security: a token with the scope when AUTH_MODE=jwt, nothing when authentication is off. */
export const bearer = (scope: 'books:read' | 'books:write'): Record<string, string[]>[] => [{ bearerAuth: [scope] }, {}]

// Answers the HTTP parser can give to any request, before it reaches a route.
const ANY_REQUEST_RESPONSES = { 431: 'RequestHeaderFieldsTooLarge' } as const

function finishDocument(document: Record<string, Json>): Record<string, Json> {
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
  const referenced = referenceComponents(document.paths as Json, schemas)
  const responses = Object.fromEntries(
    Object.entries(ANY_REQUEST_RESPONSES).map(([status, name]) => {
      const { headers, ...response } = problemResponses(Number(status))[status] as unknown as {
        headers: Record<string, { type: string; description: string; required?: boolean }>
      }
      const openApiHeaders = Object.fromEntries(
        Object.entries(headers).map(([header, { type, ...rest }]) => [header, { schema: { type }, ...rest }]),
      )
      return [name, referenceComponents(JSON.parse(JSON.stringify({ ...response, headers: openApiHeaders })), schemas)]
    }),
  )
  return { ...document, paths: referenced, components: { schemas, responses, securitySchemes: SECURITY_SCHEMES } }
}

/** Registers document generation; call before any route is added so every route is seen. */
export async function registerOpenApi(app: FastifyInstance, options: { docs: boolean }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: OPENAPI_INFO,
      servers: [{ url: '/', description: 'This server' }],
      // Open by default (AUTH_MODE=none); the books operations name the bearer scheme AUTH_MODE=jwt enforces.
      security: [],
      components: { securitySchemes: SECURITY_SCHEMES as never },
      tags: [
        { name: 'books', description: 'The book collection' },
        { name: 'health', description: 'Liveness and readiness probes' },
        { name: 'observability', description: 'Prometheus metrics' },
      ],
    },
    transformObject: (document) =>
      finishDocument(('openapiObject' in document ? document.openapiObject : {}) as Record<string, Json>) as never,
  })

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  app.get('/openapi.yaml', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('application/yaml; charset=utf-8').send(app.swagger({ yaml: true })),
  )

  if (options.docs) {
    // Swagger UI's assets ship inside the package and are served from /docs/static: no CDN, works offline.
    // Imported only when the page is on: production turns it off (DOCS_ENABLED=false) and skips loading it.
    const { default: swaggerUi } = await import('@fastify/swagger-ui')
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      staticCSP: true,
      // validatorUrl null: the page would otherwise call an online validator.
      uiConfig: {
        tryItOutEnabled: true,
        displayRequestDuration: true,
        defaultModelsExpandDepth: 0,
        validatorUrl: null,
      },
    })
  }
}
