// A real nats-server with JetStream for the tests: on a free loopback port with its own store folder; stopped and
// started again on the same port and store, as an outage would.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect as connectTcp } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseConfig } from '../../src/config/config.ts'
import type { NatsSettings } from '../../src/events/relay.ts'
import { freePort, programMissing } from './tools.ts'

export const NATS_SERVER = '/usr/sbin/nats-server'
export const natsMissing = () => programMissing(NATS_SERVER, 'apt-get install nats-server')

/** The relay's NATS settings for `url`, as NATS_URL gives them. */
export const natsSettings = (url: string) => parseConfig({ NATS_URL: url }).events.nats as NatsSettings

export interface TestNats {
  url: string
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>
  /** Starts it again on the same port and store. */
  start(): Promise<void>
  /** Stops it for good and removes its store. */
  remove(): Promise<void>
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connectTcp(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })

export async function startNats(): Promise<TestNats> {
  const port = await freePort()
  const store = mkdtempSync(join(tmpdir(), 'myapp-nats-'))
  let child: ChildProcess | undefined
  const start = async () => {
    child = spawn(NATS_SERVER, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], { stdio: 'ignore' })
    // Bounded: 100 × 50 ms.
    for (let attempt = 0; !(await accepts(port)); attempt++) {
      if (attempt === 100 || child.exitCode !== null) throw new Error(`nats-server did not start on ${port}`)
      await sleep(50)
    }
  }
  const stop = async () => {
    if (child === undefined || child.exitCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    await exited
  }
  await start()
  return {
    url: `nats://127.0.0.1:${port}`,
    stop,
    start,
    async remove() {
      await stop()
      rmSync(store, { recursive: true, force: true })
    },
  }
}
