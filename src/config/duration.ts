// Go duration strings ("3s", "1m30s", "250ms"), kept so the Go service's .env files work unchanged.

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
}

export const GO_DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$'

const PART = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g

/** Milliseconds in a Go duration string; throws on anything Go's time.ParseDuration would reject. */
export function parseDuration(text: string): number {
  if (!new RegExp(GO_DURATION_PATTERN).test(text)) {
    throw new Error(`invalid duration "${text}"`)
  }
  let ms = 0
  for (const [, amount, unit] of text.matchAll(PART)) {
    ms += Number(amount) * (UNIT_MS[unit as string] as number)
  }
  return ms
}
