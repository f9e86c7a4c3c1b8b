// Schema building blocks the configuration sections share.
import { type TSchema, type TSchemaOptions, Type } from 'typebox'
import { GO_DURATION_PATTERN } from './duration.ts'
import type { ProblemWording } from './problems.ts'

/** A string that must match pattern, and the words a mismatch is reported with (a regular expression helps no one). */
export const Matching = (pattern: string, patternMessage: string, options: TSchemaOptions) =>
  Type.String({ ...options, pattern, patternMessage } satisfies ProblemWording & TSchemaOptions)

/** A variable whose value is never shown in a problem. */
export const Secret = <T extends TSchema>(schema: T): T => Object.assign(schema, { secret: true } as const)

export const Duration = (defaultValue: string, description: string) =>
  Matching(GO_DURATION_PATTERN, 'must be a Go duration such as 3s, 250ms or 1m30s', {
    default: defaultValue,
    description,
  })

export const HttpUrl = (description: string) =>
  Matching('^https?://', 'must be an http:// or https:// URL', { description })

export const Flag = (description: string) => Type.Boolean({ default: false, description })
