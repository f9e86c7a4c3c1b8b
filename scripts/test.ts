// The test tiers, by cost: `npm test` runs the quick ones (unit, api) on the embedded database and needs nothing
// but the clone; `npm run test:all` runs every tier on both backends. TEST_BACKENDS picks the backend matrix.
// Files named *.timing.test.ts hold bounds on time: they run after the others, one at a time, so that the suite's
// own parallel files are not the load they measure.
import { spawnSync } from 'node:child_process'
import { globSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'

const TIERS: Record<string, { folders: string[]; backends: string }> = {
  quick: { folders: ['unit', 'api'], backends: 'embedded' },
  all: { folders: ['unit', 'api', 'system', 'delivery'], backends: 'embedded,postgres' },
}

const [name = 'quick', ...paths] = process.argv.slice(2)
const tier = TIERS[name]
if (tier === undefined) {
  console.error(`usage: node scripts/test.ts ${Object.keys(TIERS).join('|')} [test files or folders]`)
  process.exit(2)
}

const backends = process.env.TEST_BACKENDS ?? tier.backends
const isFolder = (path: string) => statSync(path, { throwIfNoEntry: false })?.isDirectory() === true
const patterns =
  paths.length > 0
    ? paths.map((path) => (isFolder(path) ? `${path.replace(/\/$/, '')}/**/*.test.ts` : path))
    : tier.folders.map((folder) => `test/${folder}/**/*.test.ts`)
const files = [...new Set(patterns.flatMap((pattern) => globSync(pattern)))].sort()
if (files.length === 0) {
  console.error(`no test file matches ${patterns.join(' ')}`)
  process.exit(2)
}
const timing = files.filter((file) => file.endsWith('.timing.test.ts'))
const rest = files.filter((file) => !timing.includes(file))

function run(batch: string[], concurrency: number): number {
  if (batch.length === 0) return 0
  const { status, signal } = spawnSync(
    process.execPath,
    ['--test', '--test-reporter=spec', `--test-concurrency=${concurrency}`, ...batch],
    { stdio: 'inherit', env: { ...process.env, TEST_BACKENDS: backends } },
  )
  return status ?? (signal === null ? 1 : 128)
}

const first = run(rest, availableParallelism())
const second = run(timing, 1)
process.exit(first !== 0 ? first : second)
