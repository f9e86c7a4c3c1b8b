// RFC 8288 Link header for page-numbered lists.

export interface PageRequest {
  page: number
  pageSize: number
}

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
type Relation = (typeof RELATION_PRIORITY)[number]

/**
 * Links to the first, previous, next and last pages. They carry `page`, `pageSize` and the route's other query
 * parameters named in `parameters`, never anything else the URL held: a parameter the route does not know changes
 * nothing in the list, and echoed into four links it only made the headers grow. Links that would take the header
 * past MAX_LINK_HEADER_BYTES are left out, first and last before prev and next.
 * Targets are relative references, resolved against the request URL (RFC 8288 §3.1).
 */
export function paginationLinks(
  path: string,
  query: PageRequest & Readonly<Record<string, unknown>>,
  total: number,
  parameters: readonly string[],
): string {
  const last = lastPage(total, query.pageSize)
  const target = (page: number) => {
    const params = new URLSearchParams({ page: String(page), pageSize: String(query.pageSize) })
    for (const name of parameters) {
      const value = query[name]
      if (value !== undefined && name !== 'page' && name !== 'pageSize') params.set(name, String(value))
    }
    return `<${path}?${params}>`
  }
  const pages: Partial<Record<Relation, number>> = { first: 1, last }
  if (query.page > 1) pages.prev = Math.min(query.page - 1, last)
  if (query.page < last) pages.next = query.page + 1

  const kept = new Map<Relation, string>()
  let bytes = 0
  for (const relation of RELATION_PRIORITY) {
    const page = pages[relation]
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
