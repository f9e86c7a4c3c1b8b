// The migrate command (src/migrate.ts) as `npm run migrate` runs it, in a process of its own: its exit code and
// output are what the tests check, so a failure is an answer, not a thrown error.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)
const MIGRATE = new URL('../../src/migrate.ts', import.meta.url).pathname

/** `node src/migrate.ts ...args` with PATH and `env` only, so that no DATABASE_URL of the caller leaks in. */
export const migrate = (args: string[], env: Record<string, string>) =>
  run(process.execPath, [MIGRATE, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 30_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  )
