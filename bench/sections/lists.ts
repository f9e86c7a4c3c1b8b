// Whether a list costs what its page costs: every list variant on tables of each of BENCH_LIST_SIZES books, the
// first page, the page its `Link rel="next"` names (the real link of the first answer) and, for comparison, a page
// in the middle of the matches by offset. Sequential requests on one kept-alive connection to the service in
// production mode; the median is reported. At the largest size each path's statement, built by the service's own
// listStatements and checked against the rows the service answered with, is explained.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { listStatements } from '../../src/books/repository.ts'
import { type Context, SERVICE, type Section } from '../context.ts'
import { createSeededDatabase } from '../fixtures.ts'
import { connectForPlans, type Statement } from '../plans.ts'

type ListQuery = Parameters<typeof listStatements>[0]
type Cursor = NonNullable<Parameters<typeof listStatements>[1]>

const PAGE_SIZE = 10
const WARMUPS = 2
const REQUESTS = 11
/**
 * Each author has this many books at every size (the lists' databases have books / 100 authors): a catalogue grows
 * by more authors, not by more books per author, so the author filter's matches stay the same while the table grows.
 */
const BOOKS_PER_AUTHOR = 100

/** The variants, by the query they add to GET /v1/books; bench/seed.sql has matches for each. */
const VARIANTS: { name: string; slug: string; params: Record<string, string> }[] = [
  { name: 'GET /v1/books', slug: 'default', params: {} },
  { name: '?sort=title', slug: 'sort-title', params: { sort: 'title' } },
  { name: '?sort=-published_date', slug: 'sort-published-date-desc', params: { sort: '-published_date' } },
  // A third of the seeded books.
  { name: '?status=verified', slug: 'status-verified', params: { status: 'verified' } },
  // One title in a hundred.
  { name: '?q=42 of', slug: 'q', params: { q: '42 of' } },
  { name: '?author=Author Aaa', slug: 'author', params: { author: 'Author Aaa' } },
]

import { LIST_PATHS, type ListPath, type ListsResult, type ListVariantResult } from './lists-result.ts'

export { LIST_PATHS, type ListsResult }

export const lists: Section = {
  name: 'lists',
  about: 'each list variant at every BENCH_LIST_SIZES size: first page, next page by cursor, offset page; plans',
  async run(context: Context) {
    const sizes = context.settings.listSizes
    const largest = sizes.at(-1) as number
    const plansFolder = `${context.stem}-plans`
    mkdirSync(plansFolder, { recursive: true })
    const seedSeconds: Record<string, number> = {}
    const results: ListVariantResult[] = VARIANTS.map((variant) => ({
      name: variant.name,
      params: variant.params,
      matches: {},
      paths: { first: { bySize: {}, growth: 0 }, next: { bySize: {}, growth: 0 }, offset: { bySize: {}, growth: 0 } },
    }))

    for (const size of sizes) {
      const database = await createSeededDatabase({
        adminUrl: context.settings.adminUrl,
        books: size,
        authors: Math.max(1, Math.round(size / BOOKS_PER_AUTHOR)),
      })
      seedSeconds[size] = database.seedSeconds
      context.say(`  ${size} books seeded in ${database.seedSeconds} s`)
      const statements = connectForPlans(database.url)
      const service = await context.start(`service-lists-${size}`, SERVICE, context.productionEnv(database.url))
      try {
        await warmUp(service.url, context.jwt.token)
        for (const [index, variant] of VARIANTS.entries()) {
          const result = results[index] as ListVariantResult
          const query: ListQuery = { page: 1, pageSize: PAGE_SIZE, sort: '-created_at', ...variant.params } as ListQuery
          const [counted] = await statements.rows(listStatements(query).count)
          result.matches[size] = Number(counted?.total ?? 0)
          const middlePage = Math.max(2, Math.floor((result.matches[size] ?? 0) / PAGE_SIZE / 2))
          const first = await timed(service.url, listUrl(variant.params), context.jwt.token)
          if (first.next === undefined) throw new Error(`${variant.name} at ${size} books: no next link`)
          const timings: Record<ListPath, Timed> = {
            first,
            next: await timed(service.url, first.next, context.jwt.token),
            offset: await timed(
              service.url,
              listUrl({ ...variant.params, page: String(middlePage) }),
              context.jwt.token,
            ),
          }
          const statementOf: Record<ListPath, Statement> = {
            first: listStatements(query).page,
            next: listStatements(query, cursorOf(first.next)).page,
            offset: listStatements({ ...query, page: middlePage }).page,
          }
          for (const path of LIST_PATHS) {
            const { ids, next: _, ...timing } = timings[path]
            // The statement explained must be the one the service ran: the same rows, in the same order.
            const rows = await statements.rows(statementOf[path])
            if (
              rows
                .slice(0, PAGE_SIZE)
                .map((row) => String(row.id))
                .join() !== ids.join()
            ) {
              throw new Error(
                `${variant.name}, ${path} page: the statement built here returns other rows than the service`,
              )
            }
            result.paths[path].bySize[size] = timing
            if (size === largest) {
              const file = join(plansFolder, `${variant.slug}-${path}.txt`)
              result.paths[path].plan = await statements.explain(statementOf[path], file)
            }
          }
          context.say(
            `    ${variant.name}: first ${first.medianMs} ms, next ${timings.next.medianMs} ms, ` +
              `page ${middlePage} ${timings.offset.medianMs} ms`,
          )
        }
      } finally {
        await context.stop(service)
        await statements.close()
        await database.drop()
      }
    }
    const [smallest] = sizes as [number]
    for (const result of results) {
      for (const path of LIST_PATHS) {
        const { bySize } = result.paths[path]
        const [low, high] = [bySize[smallest]?.medianMs, bySize[largest]?.medianMs]
        result.paths[path].growth =
          low === undefined || high === undefined ? Number.NaN : Number((high / low).toFixed(2))
      }
    }
    return {
      lists: {
        sizes,
        pageSize: PAGE_SIZE,
        warmups: WARMUPS,
        requests: REQUESTS,
        booksPerAuthor: BOOKS_PER_AUTHOR,
        seedSeconds,
        plansFolder,
        variants: results,
      },
    }
  },
}

const listUrl = (params: Record<string, string>) => {
  const query = new URLSearchParams(params)
  return query.size === 0 ? '/v1/books' : `/v1/books?${query}`
}

/**
 * The service's list code compiled before anything is timed: each variant's first and next page once, untimed, so
 * that the variant measured first is not also the one that pays for the warm-up.
 */
async function warmUp(origin: string, token: string) {
  for (const variant of VARIANTS) {
    const first = await timed(origin, listUrl(variant.params), token)
    if (first.next !== undefined) await timed(origin, first.next, token)
  }
}

interface Timed {
  url: string
  medianMs: number
  minMs: number
  maxMs: number
  /** The ids of the books answered. */
  ids: string[]
  /** The target of the answer's `Link rel="next"`, resolved against the request. */
  next: string | undefined
}

/** WARMUPS requests, then REQUESTS timed ones in sequence (to the end of the body); the median and the extremes. */
async function timed(origin: string, path: string, token: string): Promise<Timed> {
  const url = new URL(path, origin)
  const headers = { authorization: `Bearer ${token}` }
  const samples: number[] = []
  let response: Response | undefined
  let body = ''
  for (let i = 0; i < WARMUPS + REQUESTS; i++) {
    const started = performance.now()
    response = await fetch(url, { headers })
    body = await response.text()
    const ms = performance.now() - started
    if (!response.ok) throw new Error(`GET ${url.pathname}${url.search}: ${response.status} ${body}`)
    if (i >= WARMUPS) samples.push(ms)
  }
  samples.sort((a, b) => a - b)
  const round = (ms: number | undefined) => Number((ms ?? Number.NaN).toFixed(2))
  const link = /<([^>]*)>\s*;\s*rel="next"/.exec(response?.headers.get('link') ?? '')?.[1]
  const next = link === undefined ? undefined : new URL(link, url)
  return {
    url: `${url.pathname}${url.search}`,
    medianMs: round(samples[Math.floor(samples.length / 2)]),
    minMs: round(samples[0]),
    maxMs: round(samples.at(-1)),
    ids: (JSON.parse(body) as { id: string }[]).map((book) => book.id),
    next: next === undefined ? undefined : `${next.pathname}${next.search}`,
  }
}

/**
 * The position a `next` link names. The cursor is opaque to clients, not to the harness: base64url JSON of
 * [version, sort, direction, key, id] (src/books/cursor.ts). Should that change, the check of the rows against the
 * service's answer fails the run rather than explaining a statement the service never sent.
 */
function cursorOf(link: string): Cursor {
  const text = new URL(link, 'http://cursor.invalid').searchParams.get('cursor') ?? ''
  const [, sort, direction, key, id] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown[]
  return { sort, direction, key, id } as Cursor
}
