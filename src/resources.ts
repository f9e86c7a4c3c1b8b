// The service's resources: each brings its whole self (src/resource.ts). To add one, create its folder after
// src/books and list it here (docs/architecture.md walks through it).
import { booksResource } from './books/resource.ts'
import { eventCatalog } from './events/cloudevents.ts'
import type { Resource } from './resource.ts'

export const RESOURCES: readonly Resource[] = [booksResource]

/** Every resource's events: what the relay publishes, the feed streams and the AsyncAPI document describes. */
export const catalogOf = (resources: readonly Resource[]) =>
  eventCatalog(resources.flatMap((resource) => (resource.events === undefined ? [] : [resource.events])))

export const EVENTS = catalogOf(RESOURCES)
