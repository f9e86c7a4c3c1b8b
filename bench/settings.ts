// The benchmark's settings, read once from BENCH_* (bench/run.ts lists them).

export interface Settings {
  adminUrl: string
  seconds: number
  rounds: number
  warmupSeconds: number
  connections: number
  books: number
  coldStarts: number
  idleSeconds: number
  output: string
  /** Creates per second of the events section's relay lag. */
  eventsRate: number
  /** Table sizes of the lists section, smallest first. */
  listSizes: number[]
  /** Sections to run, in the plan's order; empty: all. */
  only: string[]
  /** A git revision whose build the against section measures beside this one; none: the section is skipped. */
  against: string | undefined
}

export function settingsFrom(env: NodeJS.ProcessEnv): Settings {
  const listSizes = (env.BENCH_LIST_SIZES ?? '10000,1000000').split(',').map(Number)
  if (listSizes.length < 2 || listSizes.some((size) => !Number.isInteger(size) || size < 1)) {
    throw new Error(
      `BENCH_LIST_SIZES must name two or more table sizes, e.g. 10000,1000000 (got ${env.BENCH_LIST_SIZES})`,
    )
  }
  const eventsRate = Number(env.BENCH_EVENTS_RATE ?? 1000)
  if (!(eventsRate > 0)) throw new Error(`BENCH_EVENTS_RATE must be a positive rate (got ${env.BENCH_EVENTS_RATE})`)
  return {
    adminUrl: env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    seconds: Number(env.BENCH_SECONDS ?? 8),
    rounds: Number(env.BENCH_ROUNDS ?? 3),
    warmupSeconds: Number(env.BENCH_WARMUP_SECONDS ?? 3),
    connections: Number(env.BENCH_CONNECTIONS ?? 16),
    books: Number(env.BENCH_BOOKS ?? 100_000),
    coldStarts: Number(env.BENCH_COLD_STARTS ?? 5),
    idleSeconds: Number(env.BENCH_IDLE_SECONDS ?? 2),
    output: env.BENCH_OUTPUT ?? 'bench/results',
    eventsRate,
    listSizes: listSizes.sort((a, b) => a - b),
    against: env.BENCH_AGAINST === undefined || env.BENCH_AGAINST === '' ? undefined : env.BENCH_AGAINST,
    only: (env.BENCH_ONLY ?? '')
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean),
  }
}
