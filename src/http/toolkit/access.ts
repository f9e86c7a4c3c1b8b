// A route's access, declared once on the route itself: what the authentication stage enforces and what the
// OpenAPI document shows are both read from this declaration.
//
//   app.get('/', { config: { access: requiresScope('books:read') }, schema }, handler)
//   app.get('/livez', { config: { access: PUBLIC }, schema }, handler)
//
// A /v1 route without a declaration is refused when the app is built (src/http/pipeline/access.ts).
import type { Access } from '../../auth/access.ts'

export { type Access, PUBLIC, requiresScope } from '../../auth/access.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call this route. Required under /v1. */
    access?: Access
  }
}
