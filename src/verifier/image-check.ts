// Whether a book's image_url is an image. The URL comes from any client, so the fetch is a server-side request
// forgery risk: only public unicast addresses are reached (ipaddr.js names the ranges), checked after DNS and
// connected to as checked, so a name that resolves once public and once private (DNS rebinding) gains nothing.
// Each redirect is checked again, the whole check has one deadline, and at most a few KiB are read.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { LookupFunction } from 'node:net'
import ipaddr from 'ipaddr.js'

/** Kinds of image, told by their first bytes (magic numbers), not by what the server calls them. */
export type ImageKind = 'png' | 'jpeg' | 'gif' | 'webp'

export type ImageVerdict =
  | { outcome: 'image'; kind: ImageKind }
  /** A 2xx answer whose bytes are no image this check knows. */
  | { outcome: 'not_image' }
  | { outcome: 'http_status'; status: number }
  /** Not fetched: an address outside the public internet, a scheme other than http(s), or too many redirects. */
  | { outcome: 'refused'; reason: string }
  /** No answer: the name does not resolve, the connection fails, or the deadline passed. */
  | { outcome: 'unreachable'; reason: string }

export interface ImageCheckOptions {
  /** Addresses or CIDR ranges reachable despite the rule (loopback for tests and local runs). */
  allow: readonly string[]
  /** For the whole check, redirects included. */
  deadlineMs: number
  /** Read at most this many bytes of a body. */
  maxBytes: number
  maxRedirects: number
}

export const IMAGE_CHECK_DEFAULTS: ImageCheckOptions = { allow: [], deadlineMs: 5000, maxBytes: 4096, maxRedirects: 3 }

const REDIRECTS = new Set([301, 302, 303, 307, 308])

/** Parses the allow-list; throws naming an entry that is neither an address nor a CIDR range. */
export function parseAllowList(entries: readonly string[]): [ipaddr.IPv4 | ipaddr.IPv6, number][] {
  return entries.map((entry) => {
    if (entry.includes('/')) return ipaddr.parseCIDR(entry)
    const address = ipaddr.parse(entry)
    return [address, address.kind() === 'ipv4' ? 32 : 128]
  })
}

/** Why an address may not be reached, or undefined when it may. */
export function addressRefusal(
  text: string,
  allow: readonly [ipaddr.IPv4 | ipaddr.IPv6, number][],
): string | undefined {
  let address: ipaddr.IPv4 | ipaddr.IPv6 = ipaddr.parse(text)
  // ::ffff:10.0.0.1 reaches 10.0.0.1.
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
    address = (address as ipaddr.IPv6).toIPv4Address()
  }
  if (allow.some(([range, bits]) => range.kind() === address.kind() && address.match(range, bits))) return undefined
  const range = address.range()
  return range === 'unicast' ? undefined : `${address.toString()} is a ${range} address`
}

class Refused extends Error {}

/** The first bytes of each kind of image. */
function kindOf(bytes: Buffer): ImageKind | undefined {
  if (bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png'
  if (bytes.subarray(0, 3).equals(Buffer.from([0xff, 0xd8, 0xff]))) return 'jpeg'
  const head = bytes.subarray(0, 6).toString('latin1')
  if (head === 'GIF87a' || head === 'GIF89a') return 'gif'
  if (bytes.subarray(0, 4).toString('latin1') === 'RIFF' && bytes.subarray(8, 12).toString('latin1') === 'WEBP') {
    return 'webp'
  }
  return undefined
}

export function createImageChecker(options: ImageCheckOptions = IMAGE_CHECK_DEFAULTS) {
  const allow = parseAllowList(options.allow)

  /** DNS resolution that hands the socket only addresses that passed, and fails when any did not. */
  const checkedLookup: LookupFunction = (hostname, lookupOptions, callback) => {
    dnsLookup(hostname, { ...lookupOptions, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, '', 4)
      const refusal = addresses.map(({ address }) => addressRefusal(address, allow)).find(Boolean)
      if (refusal !== undefined) return callback(new Refused(`${hostname} resolves to ${refusal}`), '', 4)
      if (lookupOptions.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses)
      const [first] = addresses as [LookupAddress]
      callback(null, first.address, first.family)
    })
  }

  /** One request: the answer's status, location and first bytes. */
  function fetchOnce(url: URL, signal: AbortSignal) {
    return new Promise<{ status: number; location: string | undefined; head: Buffer }>((resolve, reject) => {
      const requestOptions: RequestOptions = {
        method: 'GET',
        agent: false,
        lookup: checkedLookup,
        signal,
        headers: { accept: 'image/*', 'user-agent': 'myapp-verifier' },
      }
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest
      const request = send(url, requestOptions, (response: IncomingMessage) => {
        const status = response.statusCode ?? 0
        const chunks: Buffer[] = []
        let length = 0
        let settled = false
        const done = () => {
          settled = true
          response.destroy()
          const head = Buffer.concat(chunks).subarray(0, options.maxBytes)
          resolve({ status, location: response.headers.location, head })
        }
        if (status < 200 || status >= 300) return done()
        response.on('data', (chunk: Buffer) => {
          chunks.push(chunk)
          length += chunk.length
          if (length >= options.maxBytes) done()
        })
        response.on('end', done)
        // Cut before its end (the deadline, a reset): no verdict from part of a body.
        response.on('close', () => settled || reject(new Error('the answer was cut short')))
      })
      request.on('error', reject)
      request.end()
    })
  }

  return {
    async check(target: string): Promise<ImageVerdict> {
      const signal = AbortSignal.timeout(options.deadlineMs)
      let url: URL
      try {
        url = new URL(target)
      } catch {
        return { outcome: 'refused', reason: 'not a URL' }
      }
      for (let redirects = 0; ; redirects++) {
        if (url.protocol !== 'http:' && url.protocol !== 'https:') {
          return { outcome: 'refused', reason: `the scheme ${url.protocol} is not http or https` }
        }
        // A literal address is connected to without a lookup: checked here.
        const host = url.hostname.replace(/^\[|\]$/g, '')
        if (ipaddr.isValid(host)) {
          const refusal = addressRefusal(host, allow)
          if (refusal !== undefined) return { outcome: 'refused', reason: refusal }
        }
        let answer: Awaited<ReturnType<typeof fetchOnce>>
        try {
          answer = await fetchOnce(url, signal)
        } catch (error) {
          if (error instanceof Refused) return { outcome: 'refused', reason: error.message }
          if (signal.aborted) return { outcome: 'unreachable', reason: `no answer within ${options.deadlineMs} ms` }
          return { outcome: 'unreachable', reason: (error as Error).message }
        }
        if (REDIRECTS.has(answer.status) && answer.location !== undefined) {
          if (redirects === options.maxRedirects) {
            return { outcome: 'refused', reason: `more than ${options.maxRedirects} redirects` }
          }
          url = new URL(answer.location, url)
          continue
        }
        if (answer.status < 200 || answer.status >= 300) return { outcome: 'http_status', status: answer.status }
        const kind = kindOf(answer.head)
        return kind === undefined ? { outcome: 'not_image' } : { outcome: 'image', kind }
      }
    },
  }
}
export type ImageChecker = ReturnType<typeof createImageChecker>
