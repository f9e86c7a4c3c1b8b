// Keywords of the one schema language (TypeBox, JSON Schema) shared by the configuration, the routes and the
// documents: annotations that every validator of the service reads the same way.
import { type TSchema, Type } from 'typebox'

/** Schema annotation: the message shown when a field breaks its pattern, format or range. */
export const ERROR_MESSAGE = 'x-error-message'

/** A string that may also be null, as one JSON Schema type array (clean errors, clean OpenAPI). */
export function Nullable<T extends TSchema & { type: string }>(schema: T) {
  return Type.Unsafe<Type.Static<T> | null>({ ...schema, type: [schema.type, 'null'] })
}
