// WEB_CONCURRENCY > 1: a primary process forks that many workers sharing the port (node:cluster), for hosts
// outside Kubernetes. In Kubernetes keep one process per pod and scale replicas instead.
//
// The primary serves no requests. It forwards SIGTERM/SIGINT to the workers and exits with the worst exit code once
// they are gone, replaces a worker that dies unexpectedly, and gathers every worker's metrics for /metrics.
import cluster, { type Worker } from 'node:cluster'
import { AggregatorRegistry, type Registry } from 'prom-client'
import type { Logger } from './logger.ts'

const METRICS_REQUEST = 'myapp:cluster-metrics-request'
const METRICS_RESPONSE = 'myapp:cluster-metrics-response'
// More unexpected deaths than this per worker in a minute is a crash loop: stop rather than spin.
const RESTARTS_PER_WORKER_PER_MINUTE = 5

interface MetricsMessage {
  type: string
  id: number
  text?: string
  error?: string
}

export function runPrimary(workers: number, logger: Logger): void {
  const aggregator = new AggregatorRegistry()
  let stopping: NodeJS.Signals | undefined
  let exitCode = 0
  const deaths: number[] = []

  const fork = () => {
    const worker = cluster.fork()
    worker.on('message', (message: MetricsMessage) => {
      if (message?.type !== METRICS_REQUEST) return
      aggregator.clusterMetrics().then(
        (text) => worker.send({ type: METRICS_RESPONSE, id: message.id, text }),
        (error: Error) => worker.send({ type: METRICS_RESPONSE, id: message.id, error: error.message }),
      )
    })
  }
  const stop = (signal: NodeJS.Signals) => {
    stopping = signal
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal)
  }

  cluster.on('exit', (worker: Worker, code: number | null, signal: string | null) => {
    if (stopping !== undefined) {
      logger.info({ worker_pid: worker.process.pid, code, signal }, 'worker stopped')
      // A worker still starting has no handler yet and dies of the signal itself: it had nothing in flight.
      exitCode = Math.max(exitCode, code ?? (signal === stopping ? 0 : 1))
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode)
      return
    }
    logger.error({ worker_pid: worker.process.pid, code, signal }, 'worker died unexpectedly; starting another')
    const now = Date.now()
    deaths.push(now)
    while ((deaths[0] ?? now) < now - 60_000) deaths.shift()
    if (deaths.length > workers * RESTARTS_PER_WORKER_PER_MINUTE) {
      logger.fatal({ deaths: deaths.length }, 'workers keep dying; stopping')
      exitCode = 1
      stop('SIGTERM')
      return
    }
    fork()
  })
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  logger.info({ workers }, 'starting workers')
  for (let i = 0; i < workers; i++) fork()
}

/**
 * In a worker: makes `registry` part of the cluster's metrics and returns how to read all of them, gathered by
 * the primary (a scrape reaches one worker, but should see the whole process group).
 */
export function clusterMetrics(registry: Registry): () => Promise<string> {
  new AggregatorRegistry() // listens for the primary's requests in this worker
  AggregatorRegistry.setRegistries([registry])
  let nextId = 0
  const waiting = new Map<number, { resolve(text: string): void; reject(error: Error): void }>()
  process.on('message', (message: MetricsMessage) => {
    if (message?.type !== METRICS_RESPONSE) return
    const pending = waiting.get(message.id)
    waiting.delete(message.id)
    if (message.error !== undefined) pending?.reject(new Error(message.error))
    else pending?.resolve(message.text ?? '')
  })
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = nextId++
      const timer = setTimeout(() => {
        waiting.delete(id)
        reject(new Error('the primary process did not gather the metrics within 5 s'))
      }, 5000)
      waiting.set(id, {
        resolve: (text) => {
          clearTimeout(timer)
          resolve(text)
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        },
      })
      process.send?.({ type: METRICS_REQUEST, id })
    })
}
