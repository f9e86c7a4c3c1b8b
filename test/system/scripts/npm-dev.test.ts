// npm run dev as a developer runs it: the watcher, the service and pino-pretty in one process group, started from
// the script's own command line; its start-up says the configuration in one readable line.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe } from '../../helpers/describe.ts'
import { freePort } from '../../helpers/tools.ts'

const packageJson = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }

describe('npm run dev', () => {
  it('when it starts, then the configuration is one readable line, not one line per setting', async () => {
    const port = await freePort()
    // The script's own command line in a process group of its own, so that the watcher and pino-pretty stop with it.
    const child = spawn('sh', ['-c', packageJson.scripts.dev as string], {
      env: {
        ...process.env,
        PATH: `${new URL('../../../node_modules/.bin', import.meta.url).pathname}:${process.env.PATH}`,
        SERVER_PORT: String(port),
        DB_EMBEDDED_PATH: 'memory://',
      },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (chunk) => {
      output += chunk
    })
    child.stderr.on('data', (chunk) => {
      output += chunk
    })
    const exited = new Promise((resolve) => child.once('exit', resolve))
    try {
      const deadline = Date.now() + 60_000
      while (!output.includes('Server listening') && Date.now() < deadline && child.exitCode === null) {
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      const lines = output.split('\n').filter((line) => line.includes('INFO'))
      const starting = lines.find((line) => line.includes('INFO: starting'))
      assert.ok(starting, output)
      assert.match(starting, /"config":\{"server":\{.*"database":\{"kind":"embedded"/)
      assert.ok(lines.length <= 6, `${lines.length} log lines:\n${output}`)
    } finally {
      if (child.pid !== undefined) {
        const group = -child.pid
        if (child.exitCode === null) process.kill(group, 'SIGTERM')
        await Promise.race([exited, sleep(10_000)])
        await sleep(2000)
        // Whatever is left of the group (the watcher, its server) must not outlive the test and hold its pipes.
        try {
          process.kill(group, 'SIGKILL')
        } catch {
          // ESRCH: the whole group has stopped.
        }
      }
      await exited
    }
  })
})
