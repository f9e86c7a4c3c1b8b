// node:test's describe, except that a suite skipped for a missing program or service is counted: the runner's
// summary ("ℹ skipped N") counts skipped tests only, so a skipped describe() would leave it at 0. Such a suite
// is reported as one skipped test carrying the reason.
import { it, describe as nodeDescribe, type SuiteFn, type TestOptions } from 'node:test'

export function describe(name: string, fn: SuiteFn): void
export function describe(name: string, options: TestOptions, fn: SuiteFn): void
export function describe(name: string, optionsOrFn: TestOptions | SuiteFn, suiteFn?: SuiteFn): void {
  const [options, fn] = typeof optionsOrFn === 'function' ? [{}, optionsOrFn] : [optionsOrFn, suiteFn as SuiteFn]
  if (options.skip !== undefined && options.skip !== false) {
    nodeDescribe(name, () => {
      it('runs where what it needs is present', { skip: options.skip }, () => {})
    })
    return
  }
  nodeDescribe(name, options, fn)
}
