// Who may call a route, declared once on the route itself: what the authentication stage enforces and what the
// OpenAPI document shows are both read from this declaration.
//
//   app.get('/', { config: { access: requiresScope('books:read') }, schema }, handler)
//   app.get('/livez', { config: { access: PUBLIC }, schema }, handler)
//
// A /v1 route without a declaration is refused when the app is built (src/http/pipeline/access.ts).

export type Access = { readonly kind: 'public' } | { readonly kind: 'scope'; readonly scope: string }

/** Anyone may call the route, with or without a token. */
export const PUBLIC: Access = Object.freeze({ kind: 'public' })

/** With AUTH_MODE=jwt, a bearer token carrying `scope`; with AUTH_MODE=none, anyone. */
export function requiresScope(scope: string): Access {
  if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(scope)) throw new Error(`not an OAuth scope token: ${JSON.stringify(scope)}`)
  return Object.freeze({ kind: 'scope', scope })
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call this route. Required under /v1. */
    access?: Access
  }
}
