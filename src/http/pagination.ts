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
 * Links to the first, previous, next and last pages, keeping every other query parameter.
 * Targets are relative references, resolved against the request URL (RFC 8288 §3.1).
 */
export function paginationLinks(
  path: string,
  query: PageRequest & Record<string, string | number | undefined>,
  total: number,
): string {
  const last = lastPage(total, query.pageSize)
  const target = (page: number) => {
    const params = new URLSearchParams()
    for (const [name, value] of Object.entries({ ...query, page })) {
      if (value !== undefined) params.set(name, String(value))
    }
    return `<${path}?${params}>`
  }
  const links = [`${target(1)}; rel="first"`]
  if (query.page > 1) links.push(`${target(Math.min(query.page - 1, last))}; rel="prev"`)
  if (query.page < last) links.push(`${target(query.page + 1)}; rel="next"`)
  links.push(`${target(last)}; rel="last"`)
  return links.join(', ')
}
