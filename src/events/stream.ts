// What every resource's JetStream stream shares, as the relay creates it and the AsyncAPI document describes it.
// Its own module, so that describing the streams loads no NATS client.
/** How long JetStream remembers an event id: a re-send after a relay's crash or failover falls well within it. */
export const DUPLICATE_WINDOW_MS = 60 * 60_000
