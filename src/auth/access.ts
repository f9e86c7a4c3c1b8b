// Who may call an operation, declared once where the operation is defined: the REST routes (config.access) and the
// RPC methods both declare it with these, and each door's authentication enforces exactly that.

export type Access = { readonly kind: 'public' } | { readonly kind: 'scope'; readonly scope: string }

/** Anyone may call the operation, with or without a token. */
export const PUBLIC: Access = Object.freeze({ kind: 'public' })

/** With AUTH_MODE=jwt, a bearer token carrying `scope`; with AUTH_MODE=none, anyone. */
export function requiresScope(scope: string): Access {
  if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(scope)) throw new Error(`not an OAuth scope token: ${JSON.stringify(scope)}`)
  return Object.freeze({ kind: 'scope', scope })
}
