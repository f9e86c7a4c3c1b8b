// A server whose log reader has gone (a pipe into a pager or a log shipper that died) still stops on SIGTERM.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe } from '../../helpers/describe.ts'
import { freePort } from '../../helpers/tools.ts'

const SERVER = new URL('../../../src/server.ts', import.meta.url).pathname

describe('the server with its stdout reader gone', () => {
  it('when SIGTERM arrives after the reader of its logs has closed, then it still exits 0 within 5 s', async () => {
    const port = await freePort()
    const child = spawn(process.execPath, [SERVER], {
      env: {
        PATH: process.env.PATH,
        SERVER_HOST: '127.0.0.1',
        SERVER_PORT: String(port),
        DB_EMBEDDED_PATH: 'memory://',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
    try {
      let output = ''
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk
      })
      for (let attempt = 0; attempt < 300 && !output.includes('Server listening'); attempt++) await sleep(100)
      assert.match(output, /Server listening/)
      // The reading end closes: every later write of the process's logs fails with EPIPE.
      child.stdout.destroy()
      const stoppedAt = Date.now()
      child.kill('SIGTERM')
      const [code] = await Promise.race([exited, sleep(5000).then(() => [undefined] as const)])
      assert.equal(code, 0, `exit code ${code} after ${Date.now() - stoppedAt} ms`)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  })
})
