// Clients on distinct loopback addresses (127.0.0.2, 127.0.0.3, …) for the client-identity tests: one request per
// connection from a chosen address, checked against the contract, and the address the request log recorded for it.
import assert from 'node:assert/strict'
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { assertConformsToContract } from './contract.ts'
import type { TestService } from './service.ts'

/** The address the proxy in front connects from (nginx, in test/system): one no client uses. */
export const NGINX_ADDRESS = '127.0.0.4'

export interface Send {
  method?: string
  headers?: Record<string, string>
  body?: unknown
}

/** One request on its own connection from the loopback address `from`; the answer is checked against the contract. */
export function send(url: string, from: string, { method = 'GET', headers = {}, body }: Send = {}): Promise<Response> {
  const payload = body === undefined ? undefined : JSON.stringify(body)
  const { pathname, search } = new URL(url)
  return new Promise<Response>((resolve, reject) => {
    const outgoing = request(
      url,
      {
        method,
        localAddress: from,
        agent: false,
        headers: payload === undefined ? headers : { 'content-type': 'application/json', ...headers },
      },
      (incoming) => {
        const chunks: Buffer[] = []
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk))
        incoming.on('error', reject)
        incoming.on('end', () => {
          const responseHeaders = new Headers()
          for (const [name, value] of Object.entries(incoming.headers)) {
            for (const one of Array.isArray(value) ? value : [value ?? '']) responseHeaders.append(name, one)
          }
          const status = incoming.statusCode ?? 0
          const text = Buffer.concat(chunks).toString('utf8')
          resolve(new Response(status === 204 || status === 304 ? null : text, { status, headers: responseHeaders }))
        })
      },
    )
    outgoing.on('error', reject)
    outgoing.setTimeout(5000, () => outgoing.destroy(new Error(`${method} ${url} from ${from} timed out`)))
    outgoing.end(payload)
  }).then(async (response) => {
    await assertConformsToContract(method, `${pathname}${search}`, response.clone())
    return response
  })
}

/** The remote_ip of the request log line for this answer (written when the response is done). */
export async function loggedRemoteIp(service: TestService, response: Response): Promise<unknown> {
  const id = response.headers.get('x-request-id')
  for (let attempt = 0; attempt < 50; attempt++) {
    const line = service.logs.find((record) => record.message === 'request' && record.request_id === id)
    if (line !== undefined) return line.remote_ip
    await sleep(20)
  }
  assert.fail(`no request log line for ${id}`)
}

export const portOf = (service: TestService) => (service.app.server.address() as AddressInfo).port

/** Forwarding headers a client makes up, different on each request so that a believed one would be a new bucket. */
export const forged = (n: number) => ({
  'x-forwarded-for': `198.51.100.${n}`,
  forwarded: `for=203.0.113.${n};proto=https;host=forged.example`,
})

/** Four rounds of GET /v1/books, the clients taking turns; statuses and logged addresses per client. */
export async function rounds(
  url: string,
  service: TestService,
  clients: string[],
  headers?: (n: number) => Send['headers'],
) {
  const seen = Object.fromEntries(clients.map((client) => [client, { statuses: [] as number[], ips: [] as unknown[] }]))
  for (let n = 1; n <= 4; n++) {
    for (const client of clients) {
      const response = await send(`${url}/v1/books`, client, { headers: headers?.(n) })
      await response.arrayBuffer()
      seen[client]?.statuses.push(response.status)
      seen[client]?.ips.push(await loggedRemoteIp(service, response))
    }
  }
  return seen
}
