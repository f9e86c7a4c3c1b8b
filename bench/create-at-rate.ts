// Creates books at a fixed rate and receives their events from NATS JetStream, in a process of its own so that the
// harness's work never shows up as lag. Open loop: create n is sent at start + n / rate by the clock, whether or
// not the earlier ones were answered, and its latency counts from that moment, so a slow answer cannot hold the
// next send back and hide itself. A JetStream consumer made before the first send receives the created events;
// an event's lag is when it arrived here less when its create's answer did (the same clock). Bounded: rate ×
// seconds creates, each answered within 10 s, their events awaited for drainSeconds at most. Prints one JSON line.
//
//   node bench/create-at-rate.ts '{"url":"http://127.0.0.1:8080","token":"…","natsUrl":"nats://127.0.0.1:4222",
//     "rate":1000,"seconds":8,"drainSeconds":30}'
import { Agent, request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect, nanos } from '@nats-io/transport-node'
import { BOOK_EVENTS, type BookEvent } from '../src/books/events.ts'

interface Options {
  url: string
  token: string
  natsUrl: string
  rate: number
  seconds: number
  drainSeconds: number
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options
const REQUEST_TIMEOUT_MS = 10_000
/** A send this much after its moment is late: the driver, not the service, fell behind. */
const LATE_MS = 5
const BODY = JSON.stringify({
  title: 'A benchmark book',
  author: 'Ann Leckie',
  published_date: '2001-02-03',
  description: 'Written by the load generator.',
})

const wallClock = () => performance.timeOrigin + performance.now()

interface Arrival {
  at: number
  /** Wall-clock milliseconds at arrival, against the event's `time`. */
  wallAt: number
  eventTime: number
  count: number
}
/** Every created event received, by book id. */
const arrivals = new Map<string, Arrival>()

const nc = await connect({ servers: options.natsUrl, name: 'myapp-bench-consumer' })
const jsm = await jetstreamManager(nc)
const STREAM = BOOK_EVENTS.stream.name
// The service's relay makes the stream when it first connects.
for (let attempt = 0; ; attempt++) {
  const found = await jsm.streams.info(STREAM).then(
    () => true,
    () => false,
  )
  if (found) break
  if (attempt === 300) throw new Error(`no stream ${STREAM} within 30 s: is the service's relay connected?`)
  await sleep(100)
}
const created = BOOK_EVENTS.subjects.created
const consumerInfo = await jsm.consumers.add(STREAM, {
  ack_policy: AckPolicy.None,
  deliver_policy: DeliverPolicy.New,
  filter_subject: created,
  inactive_threshold: nanos(60_000),
})
const messages = await (await jetstream(nc).consumers.get(STREAM, consumerInfo.name)).consume({ max_messages: 1000 })
const consuming = (async () => {
  for await (const message of messages) {
    const at = performance.now()
    const event = message.json<BookEvent>()
    const known = arrivals.get(event.subject)
    if (known !== undefined) known.count++
    else arrivals.set(event.subject, { at, wallAt: wallClock(), eventTime: Date.parse(event.time), count: 1 })
  }
})()

/** Connections to the service at most: a send beyond them waits for one, its latency still counted from its moment. */
const MAX_SOCKETS = 256
const agent = new Agent({ keepAlive: true, maxSockets: MAX_SOCKETS })
let inFlight = 0
let maxInFlight = 0
const target = new URL('/v1/books', options.url)

interface Create {
  /** When it was due, by the schedule. */
  dueAt: number
  answeredAt: number
  status: number
  id?: string
}

function create(dueAt: number): Promise<Create> {
  maxInFlight = Math.max(maxInFlight, ++inFlight)
  return new Promise<Create>((resolve) => {
    const failed = () => resolve({ dueAt, answeredAt: performance.now(), status: 0 })
    const sent = request(
      target,
      {
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer ${options.token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(BODY),
        },
      },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('error', failed)
        response.on('end', () => {
          const answeredAt = performance.now()
          const status = response.statusCode ?? 0
          const id = status === 201 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string }).id : ''
          resolve({ dueAt, answeredAt, status, ...(id === '' ? {} : { id }) })
        })
      },
    )
    sent.setTimeout(REQUEST_TIMEOUT_MS, () => sent.destroy(new Error('timed out')))
    sent.on('error', failed)
    sent.end(BODY)
  }).finally(() => {
    inFlight--
  })
}

/** rate × seconds creates, each sent at its moment; how late the sends were, and every answer. */
async function part(seconds: number) {
  const total = Math.round(options.rate * seconds)
  const interval = 1000 / options.rate
  const startAt = performance.now() + 5
  const answers: Promise<Create>[] = []
  let late = 0
  let maxLateMs = 0
  while (answers.length < total) {
    const now = performance.now()
    for (let dueAt = startAt + answers.length * interval; dueAt <= now && answers.length < total; ) {
      const lateMs = now - dueAt
      if (lateMs > LATE_MS) late++
      maxLateMs = Math.max(maxLateMs, lateMs)
      answers.push(create(dueAt))
      dueAt = startAt + answers.length * interval
    }
    const next = startAt + answers.length * interval - performance.now()
    if (next > 0) await sleep(next)
  }
  const creates = await Promise.all(answers)
  return { startAt, creates, late, maxLateMs }
}

/** Until every acknowledged create's event has arrived, or drainSeconds have passed. */
async function drain(creates: Create[]) {
  const deadline = performance.now() + options.drainSeconds * 1000
  while (performance.now() < deadline && creates.some((done) => done.id !== undefined && !arrivals.has(done.id))) {
    await sleep(20)
  }
}

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number)
const round = (ms: number) => Number(ms.toFixed(2))
const spread = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return {
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? Number.NaN),
    min: round(sorted[0] ?? Number.NaN),
  }
}

const { startAt, creates, late, maxLateMs } = await part(options.seconds)
await drain(creates)
messages.stop()
await consuming
await nc.close()
agent.destroy()

const acknowledged = creates.filter((done) => done.id !== undefined)
const ours = new Set(acknowledged.map((done) => done.id as string))
const received = acknowledged.filter((done) => arrivals.has(done.id as string))
const answeredFor = Math.max(0, ...acknowledged.map((done) => done.answeredAt - startAt)) / 1000
const receivedFor =
  Math.max(0, ...received.map((done) => (arrivals.get(done.id as string) as Arrival).at - startAt)) / 1000
process.stdout.write(
  `${JSON.stringify({
    targetRate: options.rate,
    seconds: options.seconds,
    scheduled: creates.length,
    acknowledged: acknowledged.length,
    errors: creates.filter((done) => done.status === 0).length,
    non201: creates.filter((done) => done.status !== 0 && done.status !== 201).length,
    // Answers per second from the first create's moment to the last answer.
    achievedRate: answeredFor === 0 ? 0 : Math.round(acknowledged.length / answeredFor),
    // Events per second from the first create's moment to the last event's arrival: well below the answers' rate,
    // the relay fell behind.
    receivedRate: receivedFor === 0 ? 0 : Math.round(received.length / receivedFor),
    lateSends: late,
    maxLateMs: round(maxLateMs),
    // At MAX_SOCKETS, later sends waited for a connection.
    maxInFlight,
    createMs: spread(creates.map((done) => done.answeredAt - done.dueAt)),
    received: received.length,
    missing: acknowledged.length - received.length,
    duplicates: received.reduce((sum, done) => sum + ((arrivals.get(done.id as string)?.count ?? 1) - 1), 0),
    // Events of creates not made here (none: the harness lets the warm-up's arrive first).
    others: [...arrivals.keys()].filter((id) => !ours.has(id)).length,
    lagMs: spread(received.map((done) => (arrivals.get(done.id as string) as Arrival).at - done.answeredAt)),
    lagFromEventTimeMs: spread(
      received.map((done) => {
        const arrival = arrivals.get(done.id as string) as Arrival
        return arrival.wallAt - arrival.eventTime
      }),
    ),
  })}\n`,
)
