// A server-sent events client for the tests: reads frames from a fetch() body as they arrive.
import type { ReadableStreamReadResult } from 'node:stream/web'
import type { Json } from './service.ts'

export interface SseFrame {
  id?: string
  data?: string
  comment?: string
  retry?: string
}

export interface SseStream {
  status: number
  headers: Headers
  /** The next frame; rejects when none comes within `timeoutMs`. */
  next(timeoutMs?: number): Promise<SseFrame>
  /** Events (frames with data) until `count` have come, skipping comments; rejects after `timeoutMs`. */
  events(count: number, timeoutMs?: number): Promise<{ id: string; event: Json }[]>
  close(): void
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const abort = new AbortController()
  const response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal })
  const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  const frames: SseFrame[] = []
  // One read at a time: a read left behind by a timeout is the one the next call waits for, so no chunk is lost.
  let pending: Promise<ReadableStreamReadResult<string>> | undefined

  const parse = () => {
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const frame: SseFrame = {}
      for (const line of buffer.slice(0, end).split('\n')) {
        if (line.startsWith(':')) frame.comment = line.slice(1).trim()
        else {
          const at = line.indexOf(':')
          const field = line.slice(0, at) as 'id' | 'data' | 'retry'
          frame[field] = line.slice(at + 1).replace(/^ /, '')
        }
      }
      frames.push(frame)
      buffer = buffer.slice(end + 2)
    }
  }

  const next = async (timeoutMs = 10_000): Promise<SseFrame> => {
    const deadline = Date.now() + timeoutMs
    while (frames.length === 0) {
      if (reader === undefined) throw new Error(`no body (status ${response.status})`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no frame within ${timeoutMs} ms`)
      let timer: NodeJS.Timeout | undefined
      pending ??= reader.read()
      const chunk = await Promise.race([
        pending,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no frame within ${timeoutMs} ms`)), left)
        }),
      ]).finally(() => clearTimeout(timer))
      pending = undefined
      if (chunk.done) throw new Error('the stream ended')
      buffer += chunk.value
      parse()
    }
    return frames.shift() as SseFrame
  }

  return {
    status: response.status,
    headers: response.headers,
    next,
    // Generous: an event waits for every older transaction on the server to end (a long one elsewhere stalls it).
    async events(count, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs
      const events: { id: string; event: Json }[] = []
      while (events.length < count) {
        const frame = await next(Math.max(1, deadline - Date.now()))
        if (frame.data !== undefined) events.push({ id: frame.id as string, event: JSON.parse(frame.data) })
      }
      return events
    },
    close: () => abort.abort(),
  }
}
