// What a resource brings to the HTTP door: its routes under a prefix, and its part of the OpenAPI document. The app
// registers each with one line; nothing in src/http names a resource.
import type { FastifyPluginAsync } from 'fastify'
import type { TSchema } from 'typebox'

export interface DocumentTag {
  name: string
  description: string
}

export interface HttpResource {
  /** Where its routes are mounted, e.g. /v1/books. */
  prefix: string
  routes: FastifyPluginAsync
  /** The OpenAPI tags its operations use. */
  tags: readonly DocumentTag[]
  /** Schemas named once in the document's components, by their title, and referenced everywhere else. */
  components: readonly TSchema[]
}
