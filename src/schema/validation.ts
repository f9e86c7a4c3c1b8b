// Validation against the TypeBox schemas, for every door: the ajv compilers, and ajv errors turned into one clear
// message per field. REST (src/http/pipeline/validation.ts) and RPC (src/rpc/toolkit/validation.ts) both use these,
// so a value gets the same messages whichever door it came through.
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import type { TSchema } from 'typebox'
import { ERROR_MESSAGE } from './keywords.ts'

// validateSchema off: checking each schema against the JSON Schema meta-schema compiled that meta-schema once per
// Ajv instance, an eighth of a cold start. The schemas are ours, written in TypeBox; strict mode still rejects
// unknown keywords, and the OpenAPI document built from them is linted.
function createAjv(options: Options): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    removeAdditional: false,
    useDefaults: true,
    verbose: true,
    validateSchema: false,
    ...options,
  })
  addFormats.default(ajv, ['date', 'date-time', 'uri', 'uuid'])
  ajv.addKeyword({ keyword: ERROR_MESSAGE, schemaType: 'string' })
  return ajv
}

// Bodies are JSON and must already have the right types; query strings and paths are text and get coerced.
// Coercion reads text as JavaScript does, so "Infinity" and "1e999" become ±Infinity; with strictNumbers Ajv would
// then skip minimum and maximum for them, and they would reach SQL. Without it the range keywords see them.
const bodyAjv = createAjv({ coerceTypes: false })
const textAjv = createAjv({ coerceTypes: 'array', strictNumbers: false })

/** Text parts are flat: every number in them needs both bounds, which are what keep ±Infinity out. */
function assertBoundedNumbers(schema: TSchema, httpPart: string | undefined): void {
  type Property = { type?: string | string[]; minimum?: number; maximum?: number }
  const properties = (schema as { properties?: Record<string, Property> }).properties ?? {}
  for (const [name, property] of Object.entries(properties)) {
    const types = [property.type].flat()
    const numeric = types.includes('integer') || types.includes('number')
    if (numeric && (property.minimum === undefined || property.maximum === undefined)) {
      throw new Error(`${httpPart ?? 'request'} parameter ${name} is a number without a minimum and a maximum`)
    }
  }
}

/** A body (JSON, types exact) or, for any other `httpPart`, text parts (query, path, headers: coerced). */
export const compileValidator = ({ schema, httpPart }: { schema: TSchema; httpPart?: string }): ValidateFunction => {
  if (httpPart === 'body') return bodyAjv.compile(schema)
  assertBoundedNumbers(schema, httpPart)
  return textAjv.compile(schema)
}

const TYPE_NAMES: Record<string, string> = { object: 'a JSON object', null: 'null' }

const CUSTOM_MESSAGE_KEYWORDS = new Set(['pattern', 'format', 'minimum', 'maximum', 'enum'])

function describe(error: ErrorObject): string {
  const custom = (error.parentSchema as Record<string, unknown> | undefined)?.[ERROR_MESSAGE]
  if (typeof custom === 'string' && CUSTOM_MESSAGE_KEYWORDS.has(error.keyword)) return custom
  const { params } = error
  switch (error.keyword) {
    case 'required':
      return 'This field is required'
    case 'additionalProperties':
      return 'Unknown field'
    case 'type': {
      const types = [params.type].flat().map((type) => TYPE_NAMES[type] ?? withArticle(type))
      return `Must be ${types.join(' or ')}`
    }
    case 'minLength':
      return params.limit === 1 ? 'Must not be empty' : `Must be at least ${params.limit} characters`
    case 'maxLength':
      return `Must be at most ${params.limit} characters`
    case 'enum':
      return `Must be one of ${(params.allowedValues as unknown[]).join(', ')}`
    case 'format':
      return params.format === 'date' ? 'Must be a valid date' : `Must be a valid ${params.format}`
    case 'minimum':
      return `Must be greater than or equal to ${params.limit}`
    case 'maximum':
      return `Must be less than or equal to ${params.limit}`
    default:
      return 'Is invalid'
  }
}

function withArticle(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`
}

/**
 * One message per field, the first failure of each; problems with the whole value go under `rootName`. Collected in
 * a Map and made into own properties, so that members named `constructor`, `toString` or `__proto__` are fields
 * like any other rather than found on Object.prototype.
 */
export function fieldErrors(errors: readonly ErrorObject[], rootName: string): Record<string, string> {
  const fields = new Map<string, string>()
  for (const error of errors) {
    let field = error.instancePath.split('/').slice(1).join('.')
    if (error.keyword === 'required') field = joinPath(field, error.params.missingProperty as string)
    if (error.keyword === 'additionalProperties') field = joinPath(field, error.params.additionalProperty as string)
    field ||= rootName
    if (!fields.has(field)) fields.set(field, describe(error))
  }
  return Object.fromEntries(fields)
}

function joinPath(parent: string, child: string): string {
  return parent === '' ? child : `${parent}.${child}`
}
