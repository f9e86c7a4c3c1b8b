// The configuration as an entry point loads it: parsed once, or one fatal log line naming every bad variable and
// exit code 78 (EX_CONFIG), with no stack.
import { createLogger } from '../logger.ts'
import { type Config, ConfigError, parseConfig, readEnvironment } from './config.ts'

export function loadConfigOrExit(): Config {
  try {
    return parseConfig(readEnvironment())
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    createLogger('info').fatal({ problems: error.problems }, error.message)
    process.exit(78) // EX_CONFIG
  }
}
