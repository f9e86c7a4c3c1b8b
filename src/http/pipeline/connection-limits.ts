// What one connection can make the process hold, SERVER_TIMEOUT_WRITE for connections with work in progress, and
// where a parse error leaves the requests parsed before it.
//
// Node parses every pipelined request it reads and hands each to the app at once, so a client that sends many and
// never reads would have every answer built and buffered. Here a connection has at most `maxPipelined` requests
// being answered, and none is started while the socket's write side is backed up; later requests wait, and the
// socket is not read while any wait. Node reads at most one buffer (64 KiB) past that point, so what waits is
// bounded too.
//
// Node's socket timeout lets a connection live one more period when its write queue changed since the last write,
// which closed a stalled reader after up to twice the setting. Connections with work in progress are timed here
// instead, on a fine tick, from the last moment a byte moved either way.
//
// An answer given while its request's body is still arriving (413, 415, 401 …) is followed, as nginx's lingering
// close does, by reading and discarding the rest of the body before the connection closes: a socket closed with
// unread bytes sends a reset, which can reach a client still sending before it has read the answer, and the client
// then sees a broken pipe instead. What is discarded is bounded in bytes and in time; past either the connection is
// cut. Such answers say Connection: close (src/http/pipeline/errors.ts), and the connection does close after the
// body: its framing is not to be trusted, and a client told to close will not reuse it.
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/**
 * Bytes of a refused body discarded after its answer: twice what Linux lets a client's kernel hold unsent by default
 * (tcp_wmem, 4 MiB), so a client gets to read its answer, while one that never stops sending is cut early.
 */
export const DISCARD_MAX_BYTES = 8 * 1024 * 1024
/** Time allowed for that after the answer: a refused client holds its connection little longer than its answer. */
export const DISCARD_MAX_MS = 2000

export interface ConnectionLimits {
  /** Requests of one connection answered at once. */
  maxPipelined: number
  /** A connection with work in progress and no byte moving for this long is closed. */
  writeTimeoutMs: number
}

type Exchange = [request: IncomingMessage, response: ServerResponse]

interface Connection {
  readonly socket: Socket
  inFlight: number
  readonly waiting: Exchange[]
  paused: boolean
  /** The request parsed last, the only one that can still be receiving its body, and its response. */
  newestRequest: IncomingMessage | undefined
  newestResponse: ServerResponse | undefined
  /** Run once every request parsed so far has been answered. */
  readonly whenAnswered: (() => void)[]
  lastMovedAt: number
  progress: string
  /** Set while the rest of an answered request's body is being discarded; ends the discarding. */
  stopDiscarding: (() => void) | undefined
}

const connectionOf = new WeakMap<Socket, Connection>()

// The libuv write queue: the only sign that the kernel took bytes of a write still in progress.
type WithHandle = { _handle?: { writeQueueSize?: number } | null }

/**
 * What moved between the client and the kernel: bytes read, bytes of finished writes, and the write in progress's
 * queue. Answers the service adds to a buffer the client does not drain are not movement: bytesWritten and
 * writableLength both grow by them.
 */
const progressOf = (socket: Socket) =>
  `${socket.bytesRead}/${socket.bytesWritten - socket.writableLength}/${(socket as WithHandle)._handle?.writeQueueSize}`

/** Whether the request declares a body that has not been received yet (headers are read before the body). */
export const isReceivingBody = (request: IncomingMessage | undefined) =>
  request !== undefined &&
  !request.complete &&
  (request.headers['transfer-encoding'] !== undefined ||
    (request.headers['content-length'] !== undefined && request.headers['content-length'] !== '0'))

const answered = (connection: Connection) => connection.inFlight === 0 && connection.waiting.length === 0

/**
 * After the parser failed on `socket`, every request parsed before the failure keeps its answer, in order. When
 * the failure lies in the body of a request that has no answer yet, `answerBroken` gets that request's response
 * (its answer then takes the request's place in line); otherwise `answerAfter` runs once the others are answered.
 * Either way, nothing more is read from the connection.
 */
export function afterParseError(
  socket: Socket,
  answerBroken: (response: ServerResponse, request: IncomingMessage) => void,
  answerAfter: () => void,
): void {
  const connection = connectionOf.get(socket)
  if (connection === undefined) {
    answerAfter()
    return
  }
  // The parser reads no more: there is no body left to wait for.
  connection.stopDiscarding?.()
  const { newestRequest: request, newestResponse: response } = connection
  if (request !== undefined && response !== undefined && isReceivingBody(request)) {
    const waitingAt = connection.waiting.findIndex(([waiting]) => waiting === request)
    if (waitingAt >= 0) connection.waiting.splice(waitingAt, 1)
    // Its own answer, if it has one, already closes the connection (src/http/errors.ts sendProblem).
    if (!response.headersSent) {
      answerBroken(response, request)
      return
    }
    answerAfter = () => socket.destroySoon()
  }
  if (answered(connection)) answerAfter()
  else connection.whenAnswered.push(answerAfter)
}

/**
 * Reads the rest of `request`'s body, now that it has its answer, and throws it away. When the answer closes the
 * connection, Node's destroySoon after it only ends the write side, so the client sees the answer end, and the
 * connection closes once the body has ended; past DISCARD_MAX_BYTES or DISCARD_MAX_MS it is cut.
 */
function discardRestOfBody(connection: Connection, request: IncomingMessage): void {
  const { socket } = connection
  let discarded = 0
  let closeWhenEnded = false
  const count = (chunk: Buffer) => {
    discarded += chunk.length
    if (discarded > DISCARD_MAX_BYTES) cut()
  }
  const stop = () => {
    if (connection.stopDiscarding !== stop) return
    connection.stopDiscarding = undefined
    clearTimeout(timer)
    request.off('data', count)
    delete (socket as Partial<Socket>).destroySoon
  }
  const cut = () => {
    stop()
    socket.destroy()
  }
  const timer = setTimeout(cut, DISCARD_MAX_MS)
  connection.stopDiscarding = stop
  // What Node's server calls once an answer that closes the connection is written; for this socket only, until
  // stop() puts Node's own back.
  socket.destroySoon = () => {
    closeWhenEnded = true
    socket.end()
  }
  request.once('end', () => {
    if (connection.stopDiscarding !== stop) return
    stop()
    if (closeWhenEnded) socket.destroySoon()
  })
  socket.once('close', stop)
  // What the body was piped to (the read timeout's stream) has no reader any more.
  request.unpipe()
  request.on('data', count)
  request.resume()
}

/** Installs the limits on the server and returns its request listener, which passes requests on to `serve`. */
export function limitConnections(server: Server, limits: ConnectionLimits, serve: RequestListener): RequestListener {
  const { maxPipelined, writeTimeoutMs } = limits
  const connections = new Set<Connection>()

  const busy = (connection: Connection) => !answered(connection) || connection.socket.writableLength > 0
  const canStart = (connection: Connection) =>
    connection.inFlight < maxPipelined && !connection.socket.writableNeedDrain

  const start = (connection: Connection, request: IncomingMessage, response: ServerResponse) => {
    connection.inFlight++
    // The sweep takes the progress it sees next as the start; reading it here would cost every request.
    connection.lastMovedAt = performance.now()
    connection.progress = ''
    // Before Node's own 'finish' listener, which would close the connection, or else read the body unbounded.
    if (isReceivingBody(request)) {
      response.once('prefinish', () => {
        if (isReceivingBody(request) && !connection.socket.destroyed) discardRestOfBody(connection, request)
      })
    }
    response.on('close', () => {
      connection.inFlight--
      startWaiting(connection)
      if (answered(connection)) for (const callback of connection.whenAnswered.splice(0)) callback()
    })
    serve(request, response)
  }

  const startWaiting = (connection: Connection) => {
    if (connection.socket.destroyed) {
      connection.waiting.length = 0
      return
    }
    while (connection.waiting.length > 0 && canStart(connection)) {
      const [request, response] = connection.waiting.shift() as Exchange
      start(connection, request, response)
    }
    updateReading(connection)
  }

  // Reading stops while requests wait or the connection is at its limit, except while the request parsed last is
  // receiving its body: pausing then would starve it. The next request parsed after it pauses instead.
  const updateReading = (connection: Connection) => {
    const hold =
      (connection.waiting.length > 0 || connection.inFlight >= maxPipelined) &&
      !isReceivingBody(connection.newestRequest)
    if (hold === connection.paused) return
    connection.paused = hold
    if (hold) connection.socket.pause()
    else connection.socket.resume()
  }

  server.on('connection', (socket: Socket) => {
    const connection: Connection = {
      socket,
      inFlight: 0,
      waiting: [],
      paused: false,
      newestRequest: undefined,
      newestResponse: undefined,
      whenAnswered: [],
      lastMovedAt: 0,
      progress: '',
      stopDiscarding: undefined,
    }
    connections.add(connection)
    connectionOf.set(socket, connection)
    socket.on('drain', () => startWaiting(connection))
    // Node resumes a socket it paused itself once its own backlog drains; this one stays paused while requests wait.
    socket.on('resume', () => {
      if (connection.paused) socket.pause()
    })
    socket.once('close', () => {
      connections.delete(connection)
      connection.waiting.length = 0
      connection.whenAnswered.length = 0
      connection.newestRequest = undefined
      connection.newestResponse = undefined
    })
  })

  // Connections with nothing in progress keep Node's timeouts (idle keep-alive, and this one for a silent client).
  server.on('timeout', (socket: Socket) => {
    const connection = connectionOf.get(socket)
    if (connection === undefined || !busy(connection)) socket.destroy()
  })
  const tickMs = Math.min(250, Math.max(10, writeTimeoutMs / 50))
  const sweep = () => {
    const now = performance.now()
    for (const connection of connections) {
      if (!busy(connection)) continue
      const progress = progressOf(connection.socket)
      if (progress !== connection.progress) {
        connection.progress = progress
        connection.lastMovedAt = now
      } else if (now - connection.lastMovedAt >= writeTimeoutMs) {
        // Answers the client does not take are reset rather than queued behind a FIN, so the kernel frees them.
        if (connection.socket.writableLength > 0) connection.socket.resetAndDestroy()
        else connection.socket.destroy()
      }
    }
  }
  let sweeping: NodeJS.Timeout | undefined
  server.on('listening', () => {
    sweeping ??= setInterval(sweep, tickMs).unref()
  })
  server.on('close', () => {
    clearInterval(sweeping)
    sweeping = undefined
  })

  return (request, response) => {
    const connection = connectionOf.get(request.socket)
    if (connection === undefined) {
      serve(request, response)
      return
    }
    connection.newestRequest = request
    connection.newestResponse = response
    if (connection.waiting.length === 0 && canStart(connection)) start(connection, request, response)
    else connection.waiting.push([request, response])
    updateReading(connection)
  }
}
