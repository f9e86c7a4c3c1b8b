// The one way a configuration problem reaches the operator, whether the schema or a section's cross-field rule found
// it: "VARIABLE: what it must be", then the value as given unless the variable is a secret.
import type { ErrorObject } from 'ajv'
import type { TObject } from 'typebox'

export interface Problem {
  /** The variable to change. */
  readonly variable: string
  /** What is wrong, as read after the variable's name. */
  readonly message: string
  /** Whether the value as given helps the operator; a secret's value is never shown. */
  readonly showValue: boolean
}

/** What a variable's schema declares for its problems, beside the JSON Schema keywords Ajv checks. */
export interface ProblemWording {
  /** Its value never appears in a problem (nor, through describeConfig, in the start-up log). */
  readonly secret?: true
  /** Said instead of the regular expression when the value does not match the pattern. */
  readonly patternMessage?: string
}

/** A cross-field rule broken; the value is shown only where the rule is about the value itself. */
export function problem(variable: string, message: string, { showValue = false } = {}): Problem {
  return { variable, message, showValue }
}

/** An Ajv error on one variable of the environment schema, worded for the operator. */
export function schemaProblem(error: ErrorObject, schema: TObject): Problem {
  const variable = error.instancePath.slice(1)
  return { variable, message: schemaMessage(error, wordingOf(schema, variable)), showValue: true }
}

function schemaMessage(error: ErrorObject, wording: ProblemWording): string {
  switch (error.keyword) {
    case 'type':
      return `must be ${error.params.type === 'boolean' ? 'true or false' : `${article(error.params.type)} ${error.params.type}`}`
    case 'pattern':
      return wording.patternMessage ?? error.message ?? 'is invalid'
    case 'enum':
      return `must be one of ${(error.params.allowedValues as string[]).join(', ')}`
    case 'minimum':
    case 'maximum':
      return `must be ${error.keyword === 'minimum' ? '>=' : '<='} ${error.params.limit}`
    default:
      return error.message ?? 'is invalid'
  }
}

const article = (word: string) => (/^[aeiou]/.test(word) ? 'an' : 'a')

/** The problems as lines of the ConfigError, each once, in the order found. */
export function formatProblems(
  problems: readonly Problem[],
  schema: TObject,
  source: Readonly<Record<string, string | undefined>>,
): string[] {
  const lines = problems.map(({ variable, message, showValue }) => {
    const value = source[variable]
    const shown = showValue && value !== undefined && !wordingOf(schema, variable).secret ? ` (got "${value}")` : ''
    return `${variable}: ${message}${shown}`
  })
  return [...new Set(lines)]
}

function wordingOf(schema: TObject, variable: string): ProblemWording {
  return (schema.properties[variable] ?? {}) as ProblemWording
}
