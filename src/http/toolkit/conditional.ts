// Conditional requests (RFC 9110 §13): strong ETags from a version number, If-Match and If-None-Match.

/** The strong entity tag of a stored version. */
export function etagOf(version: number): string {
  return `"${version}"`
}

export type Precondition = { kind: 'any' } | { kind: 'versions'; versions: number[] }

/**
 * Parses an If-Match or If-None-Match header. `*` matches any current representation; otherwise the versions
 * named by our tags. With `weak` false (If-Match) a W/ tag never matches, as RFC 9110 §13.1.1 requires.
 */
export function parsePrecondition(header: string | undefined, { weak }: { weak: boolean }): Precondition | undefined {
  if (header === undefined) return undefined
  if (header.trim() === '*') return { kind: 'any' }
  const versions: number[] = []
  for (const raw of header.split(',')) {
    const tag = raw.trim()
    const match = /^(W\/)?"(\d{1,9})"$/.exec(tag)
    if (match === null || (match[1] !== undefined && !weak)) continue
    versions.push(Number(match[2]))
  }
  return { kind: 'versions', versions }
}

export function matches(precondition: Precondition, version: number): boolean {
  return precondition.kind === 'any' || precondition.versions.includes(version)
}
