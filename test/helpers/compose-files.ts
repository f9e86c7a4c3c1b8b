// What compose.test.ts and compose-run.test.ts both read: the configuration's variables and the ones compose.yml sets.
import { EnvSchema } from '../../src/config/config.ts'

export const ROOT = new URL('../../', import.meta.url).pathname

/** Where the service sits in compose.yml's network; .env may hold other values for running on the host. */
export const SET_BY_COMPOSE: Readonly<Record<string, string>> = {
  DATABASE_URL: '',
  DB_HOST: 'db',
  DB_PORT: '5432',
  SERVER_HOST: '0.0.0.0',
  SERVER_PORT: '8080',
  GRPC_PORT: '9090',
}

/** What compose.yml sets for one of the two: the app publishes its events to the file's NATS, the migration none. */
export function setByCompose(service: 'app' | 'migrate'): Readonly<Record<string, string>> {
  return service === 'app' ? { ...SET_BY_COMPOSE, NATS_URL: 'nats://nats:4222' } : SET_BY_COMPOSE
}

/** Every variable the service reads, as the configuration reference (docs/configuration.md) lists them. */
export function configurationVariables(): string[] {
  return Object.keys(EnvSchema.properties).sort()
}
