// The list's count preference, read from RFC 7240's Prefer header.
import type { CountMethod } from '../books.ts'

const COUNT_METHODS: readonly CountMethod[] = ['exact', 'planned', 'estimated']

/** The count=… preference of a Prefer header (RFC 7240: preferences are comma-separated, unknown ones ignored). */
export function countPreference(prefer: string | undefined): CountMethod | undefined {
  for (const preference of (prefer ?? '').split(',')) {
    const [name, value] =
      preference
        .split(';')[0]
        ?.split('=')
        .map((part) => part.trim().toLowerCase()) ?? []
    if (name === 'count' && COUNT_METHODS.includes(value as CountMethod)) return value as CountMethod
  }
  return undefined
}
