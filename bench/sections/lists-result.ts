// The shape of the lists section's results, apart from the section so that the report can name it.
import type { PlanSummary } from '../plans.ts'

export const LIST_PATHS = ['first', 'next', 'offset'] as const
export type ListPath = (typeof LIST_PATHS)[number]

export interface ListTiming {
  url: string
  medianMs: number
  minMs: number
  maxMs: number
}
export interface ListVariantResult {
  name: string
  params: Record<string, string>
  /** Books matching the variant, per table size. */
  matches: Record<string, number>
  paths: Record<ListPath, { bySize: Record<string, ListTiming>; growth: number; plan?: PlanSummary }>
}
export interface ListsResult {
  sizes: number[]
  pageSize: number
  warmups: number
  requests: number
  booksPerAuthor: number
  /** Seconds bench/seed.sql took per size: insert, index builds, VACUUM ANALYZE. */
  seedSeconds: Record<string, number>
  plansFolder: string
  variants: ListVariantResult[]
}
