// Starting servers for the benchmark and watching what they cost: CPU time and resident memory of a process and
// its children (cluster workers), sampled from /proc.
import { type ChildProcess, spawn } from 'node:child_process'
import { openSync, readdirSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

const CLOCK_TICKS = 100 // USER_HZ on Linux
const PAGE_BYTES = 4096

function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    )
  } catch {
    return []
  }
}

/** The process and all its descendants. */
export function processTree(pid: number): number[] {
  const all = [pid]
  for (let i = 0; i < all.length; i++) all.push(...childrenOf(all[i] as number))
  return all
}

/** CPU seconds (user + system) and resident bytes of one process; zeros once it is gone. */
function usageOf(pid: number): { cpuSeconds: number; rssBytes: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which may contain spaces, start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
    const rssBytes = Number(fields[21]) * PAGE_BYTES
    return { cpuSeconds, rssBytes }
  } catch {
    return { cpuSeconds: 0, rssBytes: 0 }
  }
}

export function treeUsage(pid: number): { cpuSeconds: number; rssBytes: number } {
  let cpuSeconds = 0
  let rssBytes = 0
  for (const member of processTree(pid)) {
    const usage = usageOf(member)
    cpuSeconds += usage.cpuSeconds
    rssBytes += usage.rssBytes
  }
  return { cpuSeconds, rssBytes }
}

/** Samples a process tree every 100 ms until stopped: CPU used meanwhile (% of one core) and peak RSS. */
export function watch(pid: number) {
  const start = treeUsage(pid)
  const startedAt = performance.now()
  let peakRssBytes = start.rssBytes
  const timer = setInterval(() => {
    peakRssBytes = Math.max(peakRssBytes, treeUsage(pid).rssBytes)
  }, 100)
  return {
    stop() {
      clearInterval(timer)
      const end = treeUsage(pid)
      peakRssBytes = Math.max(peakRssBytes, end.rssBytes)
      const seconds = (performance.now() - startedAt) / 1000
      return { cpuPercent: (100 * (end.cpuSeconds - start.cpuSeconds)) / seconds, peakRssBytes }
    },
  }
}

export interface Server {
  name: string
  url: string
  pid: number
  /** Milliseconds from spawn to the first 200 from the ready path. */
  startMs: number
  stop(): Promise<void>
}

/** Spawns `node <script>` with `env`, logs to `logFile`, and waits until `readyPath` answers 200 (30 s at most). */
export async function startServer(options: {
  name: string
  script: string
  port: number
  env: Record<string, string>
  logFile: string
  readyPath: string
}): Promise<Server> {
  const log = openSync(options.logFile, 'a')
  const startedAt = performance.now()
  const child: ChildProcess = spawn(process.execPath, [options.script], {
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: ['ignore', log, log],
  })
  const url = `http://127.0.0.1:${options.port}`
  let exited = false
  child.once('exit', () => {
    exited = true
  })
  const deadline = startedAt + 30_000
  for (;;) {
    if (exited) throw new Error(`${options.name} exited during start-up; see ${options.logFile}`)
    if (performance.now() > deadline) throw new Error(`${options.name} not ready within 30 s; see ${options.logFile}`)
    const status = await fetch(url + options.readyPath).then(
      (response) => response.status,
      () => 0,
    )
    if (status === 200) break
    await sleep(5)
  }
  const startMs = performance.now() - startedAt
  return {
    name: options.name,
    url,
    pid: child.pid as number,
    startMs,
    async stop() {
      if (exited) return
      const gone = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      const forced = setTimeout(() => child.kill('SIGKILL'), 20_000)
      await gone
      clearTimeout(forced)
    },
  }
}
