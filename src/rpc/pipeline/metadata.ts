// A call's metadata as the Headers that interceptors and methods read, over the header object HTTP/2 hands over.
// A Headers of undici's checks and copies every name and value when it is made and sorts them when it is read;
// most calls only look up two or three names. This one answers lookups from the object as it is, and becomes a
// real Headers, once, when it is changed or walked.
import type { IncomingHttpHeaders } from 'node:http2'

export class Metadata implements Headers {
  readonly #headers: IncomingHttpHeaders
  #copy: Headers | undefined

  constructor(headers: IncomingHttpHeaders) {
    this.#headers = headers
  }

  get(name: string): string | null {
    // HTTP/2's pseudo-headers (:path, :authority, …) are the request's, not metadata.
    if (name.startsWith(':')) return null
    if (this.#copy !== undefined) return this.#copy.get(name)
    const key = name.toLowerCase()
    const value = this.#headers[key]
    if (value === undefined) return null
    return Array.isArray(value) ? value.join(', ') : value
  }

  has(name: string): boolean {
    return this.get(name) !== null
  }

  getSetCookie(): string[] {
    return this.#real().getSetCookie()
  }

  set(name: string, value: string): void {
    this.#real().set(name, value)
  }

  append(name: string, value: string): void {
    this.#real().append(name, value)
  }

  delete(name: string): void {
    this.#real().delete(name)
  }

  forEach(callback: (value: string, name: string, parent: Headers) => void, thisArg?: unknown): void {
    this.#real().forEach((value, name) => {
      callback.call(thisArg, value, name, this)
    })
  }

  entries(): ReturnType<Headers['entries']> {
    return this.#real().entries()
  }

  keys(): ReturnType<Headers['keys']> {
    return this.#real().keys()
  }

  values(): ReturnType<Headers['values']> {
    return this.#real().values()
  }

  [Symbol.iterator](): ReturnType<Headers['entries']> {
    return this.#real()[Symbol.iterator]()
  }

  #real(): Headers {
    if (this.#copy === undefined) {
      const copy = new Headers()
      for (const name in this.#headers) {
        const value = this.#headers[name]
        if (name.startsWith(':') || value === undefined) continue
        if (Array.isArray(value)) for (const item of value) copy.append(name, item)
        else copy.append(name, value)
      }
      this.#copy = copy
    }
    return this.#copy
  }
}
