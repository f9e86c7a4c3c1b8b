// The test tiers, by cost: `npm test` runs the quick ones (unit, api) on the embedded database and needs nothing
// but the clone; `npm run test:all` runs every tier on both backends. TEST_BACKENDS picks the backend matrix.
import { spawnSync } from 'node:child_process'
import { statSync } from 'node:fs'
import { availableParallelism } from 'node:os'

const TIERS: Record<string, { folders: string[]; backends: string }> = {
  quick: { folders: ['unit', 'api'], backends: 'embedded' },
  all: { folders: ['unit', 'api', 'system', 'delivery'], backends: 'embedded,postgres' },
}

const [name = 'quick', ...files] = process.argv.slice(2)
const tier = TIERS[name]
if (tier === undefined) {
  console.error(`usage: node scripts/test.ts ${Object.keys(TIERS).join('|')} [test files or folders]`)
  process.exit(2)
}
// node --test takes files and globs, not folders: a folder stands for the tests under it.
const isFolder = (path: string) => statSync(path, { throwIfNoEntry: false })?.isDirectory() === true
const targets =
  files.length > 0
    ? files.map((path) => (isFolder(path) ? `${path.replace(/\/$/, '')}/**/*.test.ts` : path))
    : tier.folders.map((folder) => `test/${folder}/**/*.test.ts`)
const { status, signal } = spawnSync(
  process.execPath,
  ['--test', '--test-reporter=spec', `--test-concurrency=${availableParallelism()}`, ...targets],
  { stdio: 'inherit', env: { ...process.env, TEST_BACKENDS: process.env.TEST_BACKENDS ?? tier.backends } },
)
process.exit(status ?? (signal === null ? 1 : 128))
