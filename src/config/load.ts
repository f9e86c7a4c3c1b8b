// The configuration as an entry point loads it: parsed once, or one fatal log line naming every bad variable and
// exit code 78 (EX_CONFIG), with no stack. For every service: each passes its own parser.
import { createLogger } from '../logger.ts'
import { type Config, parseConfig } from './config.ts'
import { ConfigError, readEnvironment } from './environment.ts'

export function loadOrExit<T>(
  parse: (source: Readonly<Record<string, string | undefined>>) => T,
  service = 'myapp',
  source: () => Readonly<Record<string, string | undefined>> = readEnvironment,
): T {
  try {
    return parse(source())
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    createLogger('info', undefined, service).fatal({ problems: error.problems }, error.message)
    process.exit(78) // EX_CONFIG
  }
}

/** The books service's configuration. */
export const loadConfigOrExit = (): Config => loadOrExit(parseConfig)
