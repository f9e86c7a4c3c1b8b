// What a resource brings to the app: its routes under a prefix, and its part of the OpenAPI document. The app
// registers each resource with one line; nothing in src/http names one.
import type { FastifyPluginAsync } from 'fastify'
import type { TSchema } from 'typebox'
import type { RpcResource } from '../../rpc/toolkit/resource.ts'

export interface DocumentTag {
  name: string
  description: string
}

export interface Resource {
  /** Where its routes are mounted, e.g. /v1/books. */
  prefix: string
  routes: FastifyPluginAsync
  /** The OpenAPI tags its operations use. */
  tags: readonly DocumentTag[]
  /** Schemas named once in the document's components, by their title, and referenced everywhere else. */
  components: readonly TSchema[]
  /** The same resource over Protobuf (Connect, gRPC-Web, gRPC), if it has it. */
  rpc?: readonly RpcResource[]
}
