// Entry point for schema migrations, with goose's commands: npm run migrate -- <command>
import { ConfigError, parseConfig, readEnvironment } from './config/config.ts'
import { EmbeddedFolderError } from './db/errors.ts'
import { createMigrationFile, createMigrator, type GooseTakeover, type Migrator } from './db/migrator.ts'
import { openDatabase } from './db/open.ts'
import { createLogger } from './logger.ts'

const USAGE = `Usage: npm run migrate -- <command>

Commands:
  up            apply every pending migration (taking over a database the Go service migrated with goose)
  down          roll back the latest migration
  redo          roll back the latest migration and apply it again
  reset         roll back every migration
  status        list migrations and when each was applied
  version       print the current schema version
  create NAME   write the next migration file, e.g. create add_isbn_to_books

The database comes from DATABASE_URL or DB_* (the embedded database when neither is set).`

const COMMANDS: Record<string, (migrator: Migrator) => Promise<string>> = {
  up: async (migrator) => {
    const takenOver: string[] = []
    const onGooseTakeover = ({ gooseVersion, recorded }: GooseTakeover) => {
      for (const name of recorded) {
        takenOver.push(
          `${'Taken over'.padEnd(12)} ${name} from the Go service's goose schema (version ${gooseVersion})`,
        )
      }
    }
    const names = await migrator.up({ onGooseTakeover })
    return [...takenOver, applied('OK', names, await migrator.version())].join('\n')
  },
  down: async (migrator) => applied('Rolled back', await migrator.down(), await migrator.version()),
  redo: async (migrator) => applied('Redone', await migrator.redo(), await migrator.version()),
  reset: async (migrator) => applied('Rolled back', await migrator.reset(), await migrator.version()),
  version: async (migrator) => `version ${await migrator.version()}`,
  status: async (migrator) => {
    const rows = (await migrator.status()).map(
      (migration) => `  ${(migration.appliedAt?.toISOString() ?? 'Pending').padEnd(26)} ${migration.name}`,
    )
    return [`  ${'Applied At'.padEnd(26)} Migration`, `  ${'='.repeat(50)}`, ...rows].join('\n')
  },
}

function applied(verb: string, names: string[], version: number): string {
  const lines = names.map((name) => `${verb.padEnd(12)} ${name}`)
  lines.push(names.length === 0 ? `no change; version ${version}` : `now at version ${version}`)
  return lines.join('\n')
}

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args
  if (command === undefined || command === 'help' || command === '--help') {
    console.log(USAGE)
    return command === undefined ? 2 : 0
  }
  if (command === 'create') {
    if (rest.length !== 1) {
      console.error('create needs exactly one NAME, e.g. create add_isbn_to_books')
      return 2
    }
    console.log(`Created ${createMigrationFile(rest[0] as string)}`)
    return 0
  }
  const run = COMMANDS[command]
  if (run === undefined || rest.length > 0) {
    console.error(`unknown command or arguments: ${args.join(' ')}\n\n${USAGE}`)
    return 2
  }

  const config = parseConfig(readEnvironment())
  const database = await openDatabase(config.database, createLogger(config.log.level))
  try {
    console.log(await run(createMigrator(database)))
    return 0
  } finally {
    await database.close()
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const known = error instanceof ConfigError || error instanceof EmbeddedFolderError
    console.error(`migrate: ${known ? error.message : String(error)}`)
    if (error instanceof Error && error.cause !== undefined) console.error(`  cause: ${String(error.cause)}`)
    process.exit(error instanceof EmbeddedFolderError ? error.exitCode : 1)
  },
)
