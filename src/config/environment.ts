// How a service reads its environment, for every service of the project: one TypeBox schema, validated once at
// start-up with the sections' own rules, every problem reported the same way, then mapped to a frozen object.
import { existsSync, readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { Ajv } from 'ajv'
import type { Static, TObject } from 'typebox'
import { formatProblems, type Problem, schemaProblem } from './problems.ts'

export class ConfigError extends Error {
  readonly problems: readonly string[]
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

// No meta-schema check of our own schema at every start (see src/http/pipeline/validation.ts).
const ajv = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: true, strict: false, validateSchema: false })

/**
 * A reader of the environment `schema` describes: the variables it names, typed and defaulted, or a ConfigError
 * naming every bad one. `rules` add the checks a schema cannot state; they run even when the schema already
 * refused something, so one start-up names every bad variable.
 */
export function environmentReader<S extends TObject>(schema: S, rules: (env: Static<S>) => Problem[] = () => []) {
  const validate = ajv.compile(schema)
  return (source: Readonly<Record<string, string | undefined>>): Static<S> => {
    // An empty assignment (FOO=) means "not set", as in most .env tooling.
    const env: Record<string, unknown> = {}
    for (const name of Object.keys(schema.properties)) {
      const value = source[name]
      if (value !== undefined && value !== '') env[name] = value
    }
    const problems: Problem[] = validate(env)
      ? []
      : (validate.errors ?? []).map((error) => schemaProblem(error, schema))
    problems.push(...rules(env as Static<S>))
    if (problems.length > 0) throw new ConfigError(formatProblems(problems, schema, source))
    return env as Static<S>
  }
}

/** The process environment merged over a .env file in the working directory (real variables win). */
export function readEnvironment(
  env: NodeJS.ProcessEnv = process.env,
  dotenvPath = '.env',
): Record<string, string | undefined> {
  const fromFile = existsSync(dotenvPath) ? parseEnv(readFileSync(dotenvPath, 'utf8')) : {}
  return { ...fromFile, ...env }
}

export function deepFreeze<T extends object>(value: T): Readonly<T> {
  for (const child of Object.values(value)) {
    if (child !== null && typeof child === 'object') deepFreeze(child)
  }
  return Object.freeze(value)
}
