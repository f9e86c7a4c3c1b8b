// GET /asyncapi.json and /asyncapi.yaml: the AsyncAPI document of the book events, beside /openapi.json and, like
// it, public and left out of the OpenAPI document. Built once, from the schemas, when the module loads.
import type { FastifyPluginAsync } from 'fastify'
import { PUBLIC } from '../../http/toolkit/access.ts'
import { buildAsyncApi } from '../asyncapi.ts'
import { FEED_ACCESS, PREFIX } from './routes.ts'

/** The document as served, and as `npm run openapi` commits it (asyncapi.yaml). */
export const ASYNCAPI = buildAsyncApi({ feed: { path: PREFIX, access: FEED_ACCESS } })

export const asyncApiRoutes: FastifyPluginAsync = async (app) => {
  const hidden = { config: { access: PUBLIC }, schema: { hide: true } }
  app.get('/asyncapi.json', hidden, async () => ASYNCAPI.document)
  app.get('/asyncapi.yaml', hidden, async (_request, reply) =>
    reply.type('application/yaml; charset=utf-8').send(ASYNCAPI.yaml),
  )
}
