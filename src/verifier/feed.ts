// Without a broker, the verifier follows the books service's event feed (GET /v1/events, server-sent events) and
// keeps its position in a file: after a restart it resumes with Last-Event-ID where it stopped. An event is handled
// before its position is kept, so a crash in between replays it, which the handling tolerates (idempotent).
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import type { Logger } from '../logger.ts'

export interface FeedOptions {
  /** The books service's base URL (its HTTP port). */
  url: string
  token: () => string | undefined
  positionFile: string
  logger: Logger
  /** Reconnection backoff: exponential with full jitter between these bounds. */
  retry: { initialDelayMs: number; maxDelayMs: number }
  /** Attempts at one event before it is given up (told to onGiveUp) and the feed moves past it, as max_deliver. */
  maxAttempts: number
  onGiveUp: (event: unknown, error: unknown) => void
}

async function readPosition(file: string): Promise<string | undefined> {
  try {
    const text = (await readFile(file, 'utf8')).trim()
    return text === '' ? undefined : text
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** Written whole or not at all: a crash mid-write leaves the previous position. */
async function keepPosition(file: string, position: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true })
  await writeFile(`${file}.tmp`, `${position}\n`)
  await rename(`${file}.tmp`, file)
}

/**
 * Follows the feed until stopped, handing each event (parsed JSON) to `handle` in order. When `handle` throws,
 * the connection is dropped and the event comes again after a pause, from the kept position.
 */
export function followFeed(options: FeedOptions, handle: (event: unknown) => Promise<void>) {
  const stopping = new AbortController()
  let connected = false
  let position: string | undefined
  /** The event that keeps failing, and how many times it has. */
  let failing: { id: string; attempts: number } | undefined

  async function session(): Promise<void> {
    position = await readPosition(options.positionFile)
    const token = options.token()
    const response = await fetch(`${options.url}/v1/events`, {
      headers: {
        accept: 'text/event-stream',
        ...(position === undefined ? {} : { 'last-event-id': position }),
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      signal: stopping.signal,
    })
    if (response.status !== 200 || response.body === null) {
      await response.body?.cancel()
      throw new Error(`the event feed answered ${response.status}`)
    }
    connected = true
    const pending: EventSourceMessage[] = []
    const parser = createParser({ onEvent: (message) => pending.push(message) })
    const decoder = new TextDecoder()
    try {
      for await (const chunk of response.body) {
        parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }))
        while (pending.length > 0) {
          const message = pending.shift() as EventSourceMessage
          const event = JSON.parse(message.data)
          try {
            await handle(event)
            failing = undefined
          } catch (error) {
            const attempts = failing !== undefined && failing.id === message.id ? failing.attempts + 1 : 1
            failing = { id: message.id ?? '', attempts }
            if (attempts < options.maxAttempts) throw error
            // Given up, as JetStream's max_deliver would: told, and passed, so the feed does not stall on it.
            options.onGiveUp(event, error)
            failing = undefined
          }
          if (message.id !== undefined) {
            position = message.id
            await keepPosition(options.positionFile, message.id)
          }
        }
      }
    } finally {
      connected = false
    }
  }

  const done = (async () => {
    for (let failures = 0; !stopping.signal.aborted; ) {
      try {
        await session()
        failures = 0
      } catch (error) {
        if (stopping.signal.aborted) break
        failures++
        options.logger.warn({ err: error, failures }, 'event feed interrupted; reconnecting')
      }
      const ceiling = Math.min(options.retry.maxDelayMs, options.retry.initialDelayMs * 2 ** failures)
      await sleep(Math.random() * ceiling, undefined, { signal: stopping.signal }).catch(() => undefined)
    }
  })()

  return {
    connected: () => connected,
    position: () => position,
    async stop(): Promise<void> {
      stopping.abort()
      await done
    },
  }
}
