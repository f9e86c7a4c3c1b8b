// With a broker, the verifier consumes the books' events from JetStream: one durable pull consumer on the created
// and updated subjects, shared by every replica (each message goes to one of them), explicit acks, a bounded number
// of messages in hand. A message that fails is redelivered after a growing wait, up to max_deliver times; then
// it goes to the dead-letter subject with its reason, and is counted. A message that is no event goes there at once.
import { AckPolicy, DeliverPolicy, type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { type ConnectionOptions, connect, headers, type NatsConnection, nanos } from '@nats-io/transport-node'
import type { Logger } from '../logger.ts'

export interface ConsumerOptions {
  connection: ConnectionOptions
  /** The books' stream and the subjects of the changes the verifier acts on. */
  stream: string
  subjects: readonly string[]
  /** The durable consumer's name, the same for every replica. */
  durable: string
  /** Messages handled at once, per replica. */
  concurrency: number
  maxDeliver: number
  /** The waits before each redelivery, the last repeated; also JetStream's backoff for a message never acked. */
  backoffMs: readonly number[]
  /** How long a message may be in hand before JetStream gives it to another replica. */
  ackWaitMs: number
  /** Where a message that kept failing goes, in a stream of its own. */
  deadLetter: { stream: string; subject: string }
  logger: Logger
}

/** What became of a message that could not be handled. */
export type DeadLetterReason = 'not_an_event' | 'kept_failing'

const isMissing = (error: unknown) => /not found/i.test(String((error as Error)?.message))

/**
 * Consumes until stopped, handing each event to `handle`. `handle` resolving acks the message; throwing naks it
 * (redelivered after the backoff) or, at its last delivery, dead-letters it.
 */
export async function consumeEvents(
  options: ConsumerOptions,
  handle: (event: unknown, traceparent: string | undefined) => Promise<void>,
  onDeadLetter: (reason: DeadLetterReason) => void,
) {
  const nc: NatsConnection = await connect(options.connection)
  try {
    return await consumeOn(nc, options, handle, onDeadLetter)
  } catch (error) {
    await nc.close()
    throw error
  }
}

/** Whether the server takes several filter subjects on one consumer (nats-server 2.10 and later). */
function takesSeveralFilters(nc: NatsConnection): boolean {
  const [major = 0, minor = 0] = (nc.info?.version ?? '0.0').split('.').map(Number)
  return major > 2 || (major === 2 && minor >= 10)
}

async function consumeOn(
  nc: NatsConnection,
  options: ConsumerOptions,
  handle: (event: unknown, traceparent: string | undefined) => Promise<void>,
  onDeadLetter: (reason: DeadLetterReason) => void,
) {
  const jsm = await jetstreamManager(nc)
  const js = jetstream(nc)
  const log = options.logger

  // The dead letters' own stream: kept for inspection, apart from the events.
  try {
    await jsm.streams.info(options.deadLetter.stream)
  } catch (error) {
    if (!isMissing(error)) throw error
    await jsm.streams.add({ name: options.deadLetter.stream, subjects: [options.deadLetter.subject] })
  }

  // The books' stream is the books service's to create; until it exists there is nothing to consume.
  // A server before 2.10 takes one filter: the whole stream then, whose other changes the handling skips.
  const filter = takesSeveralFilters(nc)
    ? { filter_subjects: [...options.subjects] }
    : { filter_subject: `${options.subjects[0]?.split('.')[0]}.>` }
  const config = {
    durable_name: options.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ...filter,
    max_deliver: options.maxDeliver,
    backoff: options.backoffMs.map((ms) => nanos(ms)),
    ack_wait: nanos(options.ackWaitMs),
    max_ack_pending: options.concurrency * 4,
  }
  let stopped = false
  for (let attempt = 1; ; attempt++) {
    try {
      await jsm.consumers.add(options.stream, config)
      break
    } catch (error) {
      if (!isMissing(error) || stopped) throw error
      if (attempt === 1) log.info({ stream: options.stream }, 'waiting for the books stream')
      await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** attempt)))
    }
  }
  const consumer = await js.consumers.get(options.stream, options.durable)
  const messages = await consumer.consume({ max_messages: options.concurrency * 2 })

  async function deadLetter(message: JsMsg, reason: DeadLetterReason, detail: string) {
    const dead = headers()
    dead.set('myapp-dead-letter-reason', reason)
    dead.set('myapp-dead-letter-detail', detail.slice(0, 500))
    dead.set('myapp-original-subject', message.subject)
    dead.set('myapp-deliveries', String(message.info.deliveryCount))
    await js.publish(options.deadLetter.subject, message.data, { headers: dead })
    // No reason text: servers before 2.10.4 ignore a TERM that carries one, and redeliver.
    message.term()
    onDeadLetter(reason)
    log.warn({ subject: message.subject, reason, detail, deliveries: message.info.deliveryCount }, 'dead-lettered')
  }

  async function process(message: JsMsg) {
    let event: unknown
    try {
      event = message.json()
    } catch (error) {
      return deadLetter(message, 'not_an_event', (error as Error).message)
    }
    try {
      await handle(event, message.headers?.get('traceparent') || undefined)
      message.ack()
    } catch (error) {
      if (message.info.deliveryCount >= options.maxDeliver) {
        return deadLetter(message, 'kept_failing', (error as Error).message)
      }
      // Redelivered after the wait for this delivery: a NAK without a delay is redelivered at once (the consumer's
      // backoff applies only when the ack wait runs out), which would spend every delivery in an outage's first
      // second.
      const waits = options.backoffMs
      message.nak(waits[Math.min(message.info.deliveryCount, waits.length) - 1] ?? 0)
    }
  }

  // Bounded concurrency: at most `concurrency` messages handled at once, in the order they came.
  const inHand = new Set<Promise<void>>()
  const loop = (async () => {
    for await (const message of messages) {
      const done: Promise<void> = process(message)
        .catch((error: unknown) => log.error({ err: error }, 'a message could not be settled'))
        .finally(() => inHand.delete(done))
      inHand.add(done)
      if (inHand.size >= options.concurrency) await Promise.race(inHand)
    }
  })()

  return {
    connected: () => !nc.isClosed(),
    /** The consumer as JetStream counts it: waiting, delivered but unacknowledged, and redelivered messages. */
    async backlog() {
      const info = await jsm.consumers.info(options.stream, options.durable)
      return { pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered }
    },
    /** Stops pulling, lets the messages in hand finish (or be redelivered after ack_wait), and disconnects. */
    async stop(): Promise<void> {
      stopped = true
      messages.stop()
      await loop
      await Promise.allSettled(inHand)
      await nc.drain()
    },
  }
}
