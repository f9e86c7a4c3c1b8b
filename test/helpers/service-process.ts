// The real server (src/server.ts) as a child process on either backend, for what only a process shows: its
// resident memory, and sockets the test does not share with it.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { createServerDatabase, type ServerDatabase } from './postgres-server.ts'
import type { Backend } from './service.ts'
import { freePort } from './tools.ts'

const SERVER = new URL('../../src/server.ts', import.meta.url).pathname

export interface ServiceProcess {
  port: number
  baseUrl: string
  child: ChildProcess
  /** VmRSS from /proc, in MiB. */
  rssMiB(): number
  stop(): Promise<void>
}

export async function startServiceProcess(backend: Backend, env: Record<string, string> = {}): Promise<ServiceProcess> {
  const database: ServerDatabase | undefined = backend === 'postgres' ? await createServerDatabase() : undefined
  const port = await freePort()
  const baseUrl = `http://127.0.0.1:${port}`
  const child = spawn(process.execPath, [SERVER], {
    env: {
      PATH: process.env.PATH,
      SERVER_HOST: '127.0.0.1',
      SERVER_PORT: String(port),
      LOG_LEVEL: 'warn',
      RATE_LIMIT_MAX: '0',
      LOAD_SHED_EVENT_LOOP_DELAY: '0',
      ...(database === undefined
        ? { DB_EMBEDDED_PATH: 'memory://' }
        : { DATABASE_URL: database.url, DB_MIGRATE_ON_START: 'true' }),
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const exit = once(child, 'exit')
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exit
    }
    await database?.drop()
  }
  // Bounded: 300 × 100 ms.
  for (let attempt = 0; ; attempt++) {
    const up = await fetch(`${baseUrl}/livez`).then(
      (response) => response.ok,
      () => false,
    )
    if (up) break
    if (attempt === 300 || child.exitCode !== null) {
      await stop()
      throw new Error(`the service did not start within 30 s (exit code ${child.exitCode})`)
    }
    await sleep(100)
  }
  return {
    port,
    baseUrl,
    child,
    rssMiB: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024,
    stop,
  }
}
