// RFC 8288 Link header for paged lists, whether pages are named by number or by cursor.

/** The number of the last page; an empty result still has one (empty) page. */
export function lastPage(total: number, pageSize: number): number {
  return Math.max(1, Math.ceil(total / pageSize))
}

/**
 * The most a Link header may take. Node's HTTP client refuses response headers over 16 KiB in all; long filters of
 * four-byte characters, percent-encoded, would make four links larger than that.
 */
export const MAX_LINK_HEADER_BYTES = 8192

// When not every link fits, these are kept first: they are what a client walking the list follows.
const RELATION_PRIORITY = ['next', 'prev', 'first', 'last'] as const
export type Relation = (typeof RELATION_PRIORITY)[number]

/** Per relation, the query parameters that name its page (`page`, or a cursor); relations left out get no link. */
export type PageTargets = Partial<Record<Relation, Readonly<Record<string, string>>>>

/**
 * Links to the pages in `targets`. Each carries its own page parameters, then `pageSize` and the route's other
 * query parameters named in `parameters` (never those in `pageParameters`, nor anything else the URL held: a
 * parameter the route does not know changes nothing in the list, and echoed into four links it only made the
 * headers grow). Links that would take the header past MAX_LINK_HEADER_BYTES are left out, first and last before
 * prev and next. Targets are relative references, resolved against the request URL (RFC 8288 §3.1).
 */
export function paginationLinks(
  path: string,
  query: Readonly<Record<string, unknown>>,
  targets: PageTargets,
  parameters: readonly string[],
  pageParameters: readonly string[],
): string {
  const target = (page: Readonly<Record<string, string>>) => {
    const params = new URLSearchParams(page)
    for (const name of parameters) {
      const value = query[name]
      if (value !== undefined && !pageParameters.includes(name)) params.set(name, String(value))
    }
    return `<${path}?${params}>`
  }
  const kept = new Map<Relation, string>()
  let bytes = 0
  for (const relation of RELATION_PRIORITY) {
    const page = targets[relation]
    if (page === undefined) continue
    const link = `${target(page)}; rel="${relation}"`
    // Header values are ASCII here (URLSearchParams percent-encodes the rest): one character, one byte.
    const added = link.length + (kept.size === 0 ? 0 : 2)
    if (kept.size > 0 && bytes + added > MAX_LINK_HEADER_BYTES) continue
    kept.set(relation, link)
    bytes += added
  }
  return (['first', 'prev', 'next', 'last'] as const).flatMap((relation) => kept.get(relation) ?? []).join(', ')
}
