// What compose.test.ts and compose-run.test.ts both read: the README's variables and the ones compose.yml sets.
import { readFileSync } from 'node:fs'

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

/** The variables of the README's configuration tables (`| variable | default | meaning |`). */
export function readmeVariables(): string[] {
  const names = new Set<string>()
  let inTable = false
  for (const line of readFileSync(`${ROOT}README.md`, 'utf8').split('\n')) {
    if (/^\| variable \| default \| meaning \|/.test(line)) inTable = true
    else if (!line.startsWith('|')) inTable = false
    else if (inTable) {
      const firstCell = line.split('|')[1] ?? ''
      for (const [, name] of firstCell.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) names.add(name as string)
    }
  }
  return [...names].sort()
}
