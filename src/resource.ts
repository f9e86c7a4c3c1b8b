// The resource contract: what a resource brings to the service, assembled in its own folder (src/books/resource.ts
// is the model). Its operations, each declared once; its events, if its writes record any; and, built on the
// service's database, its REST routes, its RPC services and its background jobs. The composition root
// (src/service.ts) registers every resource of src/resources.ts the same way; no shared layer names one.
import type { Operation } from './admission/operation.ts'
import type { Config } from './config/config.ts'
import type { Database } from './db/database.ts'
import type { ResourceEvents } from './events/cloudevents.ts'
import type { HttpResource } from './http/toolkit/resource.ts'
import type { Job } from './jobs/jobs.ts'
import type { Logger } from './logger.ts'
import type { RpcResource } from './rpc/toolkit/resource.ts'

/** What a resource is built with. */
export interface ResourceContext {
  database: Database
  logger: Logger
  /** The API's rules for writes that every resource follows (REQUIRE_IF_MATCH). */
  writes: Config['writes']
}

/** A resource's parts, built for one app. */
export interface ResourceParts {
  http?: HttpResource
  rpc?: readonly RpcResource[]
  jobs?: readonly Job[]
}

export interface Resource {
  /** The resource's name, as its folder is named. */
  name: string
  /** Every operation it serves, on any door. */
  operations: Readonly<Record<string, Operation>>
  /** The events its writes record in the outbox. */
  events?: ResourceEvents
  build(context: ResourceContext): ResourceParts
}
