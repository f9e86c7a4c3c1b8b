// GET /asyncapi.json and /asyncapi.yaml: the AsyncAPI document of the events, beside /openapi.json and, like it,
// public and left out of the OpenAPI document. Built once, when the app is.
import type { FastifyPluginAsync } from 'fastify'
import type { Operation } from '../../http/toolkit/operation.ts'
import type { buildAsyncApi } from '../asyncapi.ts'

export const asyncApiRoutes: FastifyPluginAsync<{
  document: ReturnType<typeof buildAsyncApi>
  operation: Operation
}> = async (app, { document, operation }) => {
  const hidden = { config: { operation }, schema: { hide: true } }
  app.get('/asyncapi.json', hidden, async () => document.document)
  app.get('/asyncapi.yaml', hidden, async (_request, reply) =>
    reply.type('application/yaml; charset=utf-8').send(document.yaml),
  )
}
