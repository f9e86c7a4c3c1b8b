// The JetStream stream the relay publishes into, as the relay creates it and the AsyncAPI document describes it.
// Its own module, so that describing the stream loads no NATS client.
export const STREAM = 'BOOKS'
export const STREAM_SUBJECTS = ['books.>']
/** How long JetStream remembers an event id: a re-send after a relay's crash or failover falls well within it. */
export const DUPLICATE_WINDOW_MS = 60 * 60_000
