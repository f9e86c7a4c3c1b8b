// A nats-server with JetStream for the benchmark's events: on a free loopback port, with its store and log in the
// run's work folder, so that nothing of an earlier run (a stream, its messages) is found by this one.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, openSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './ports.ts'

/** Debian's nats-server (apt-get install nats-server), found on the PATH. */
export const NATS_SERVER = 'nats-server'

export interface NatsServer {
  url: string
  pid: number
  /** Stops the server (SIGTERM, then SIGKILL after 10 s) and removes its store. */
  stop(): Promise<void>
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })

export async function startNatsServer(workDir: string): Promise<NatsServer> {
  const port = await freePort()
  const store = join(workDir, `nats-store-${port}`)
  mkdirSync(store, { recursive: true })
  const log = openSync(join(workDir, `nats-server-${port}.log`), 'a')
  const child: ChildProcess = spawn(NATS_SERVER, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], {
    stdio: ['ignore', log, log],
  })
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const forced = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(forced)
    }
    rmSync(store, { recursive: true, force: true })
  }
  // Bounded: 200 × 50 ms.
  for (let attempt = 0; !(await accepts(port)); attempt++) {
    if (attempt === 200 || child.exitCode !== null) {
      await stop()
      throw new Error(`nats-server did not start on port ${port}; see ${workDir}/nats-server-${port}.log`)
    }
    await sleep(50)
  }
  return { url: `nats://127.0.0.1:${port}`, pid: child.pid as number, stop }
}
