// Messages judged by the same TypeBox schemas, with the same messages, as the REST bodies.
import type { Static, TSchema } from 'typebox'
import { compileValidator, fieldErrors } from '../../schema/validation.ts'
import { invalidArgument } from './calls.ts'

/**
 * A check of values against `schema`: the value (defaults filled in) when valid, otherwise INVALID_ARGUMENT with a
 * violation per field, named by `field` (the request message's name for the schema's field).
 */
export function validator<T extends TSchema>(schema: T, field: (name: string) => string = (name) => name) {
  const validate = compileValidator({ schema, httpPart: 'body' }) as ((value: unknown) => boolean) & {
    errors?: Parameters<typeof fieldErrors>[0] | null
  }
  return (value: unknown): Static<T> => {
    if (validate(value)) return value as Static<T>
    const errors = fieldErrors(validate.errors ?? [], 'value')
    throw invalidArgument(Object.fromEntries(Object.entries(errors).map(([name, message]) => [field(name), message])))
  }
}
