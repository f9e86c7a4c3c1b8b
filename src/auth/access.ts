// Who may call an operation, part of the operation's one declaration (src/admission/operation.ts): each door's
// admission enforces it, and the OpenAPI and AsyncAPI documents show it.

export type Access =
  | { readonly kind: 'public' }
  /** A token carrying any one of `scopes` (one, for every operation but a feed that several resources share). */
  | { readonly kind: 'scope'; readonly scopes: readonly string[] }

/** Anyone may call the operation, with or without a token. */
export const PUBLIC: Access = Object.freeze({ kind: 'public' })

/** With AUTH_MODE=jwt, a bearer token carrying `scope` (or any one of several); with AUTH_MODE=none, anyone. */
export function requiresScope(...scopes: [string, ...string[]]): Access {
  for (const scope of scopes) {
    if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(scope))
      throw new Error(`not an OAuth scope token: ${JSON.stringify(scope)}`)
  }
  return Object.freeze({ kind: 'scope', scopes: Object.freeze([...new Set(scopes)]) })
}

/** Whether a caller holding `granted` may call an operation of this access. */
export function allows(access: Access, granted: ReadonlySet<string>): boolean {
  return access.kind === 'public' || access.scopes.some((scope) => granted.has(scope))
}
