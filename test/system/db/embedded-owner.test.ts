// One embedded database folder, one owner: the real server, seed and migrate processes side by side on one folder.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import fs, { existsSync, mkdtempSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { LOCK_FILE, lockFolder } from '../../../src/db/folder-lock.ts'
import { openPglite } from '../../../src/db/pglite.ts'
import { describe } from '../../helpers/describe.ts'
import { createServerDatabase, postgresServerUnavailable } from '../../helpers/postgres-server.ts'
import { bodyOf, jsonRequest } from '../../helpers/service.ts'
import { freePort } from '../../helpers/tools.ts'

const SERVER = new URL('../../../src/server.ts', import.meta.url).pathname
const SEED = new URL('../../../scripts/seed.ts', import.meta.url).pathname
const MIGRATE = new URL('../../../src/migrate.ts', import.meta.url).pathname
const FOLDER_LOCK = new URL('../../../src/db/folder-lock.ts', import.meta.url).href
const SEEDED = 36
const BOOK = { title: 'Kindred', author: 'Octavia E. Butler', published_date: '1979-06-01' }
// The exit codes of a refusal (sysexits.h): the folder is busy; it cannot be created or written.
const EX_TEMPFAIL = 75
const EX_CANTCREAT = 73

const noPostgresServer = await postgresServerUnavailable()

interface Finished {
  code: number | null
  output: string
}

interface Running {
  child: ChildProcess
  pid: number
  url: string
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>
}

const newFolder = () => mkdtempSync(join(tmpdir(), 'myapp-owner-'))
/** A PostgreSQL URL or an embedded database folder, as the environment names it. */
const envFor = (database: string): Record<string, string> =>
  database.startsWith('postgres://') ? { DATABASE_URL: database } : { DB_EMBEDDED_PATH: database }

// Processes still running when a test ends, as after a failed assertion: killed, so that the run can end.
const running = new Set<ChildProcess>()
afterEach(() => {
  for (const child of running) child.kill('SIGKILL')
})

function spawnNode(args: string[], env: Record<string, string>): { child: ChildProcess; finished: Promise<Finished> } {
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH, SERVER_HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  const finished = once(child, 'exit').then(([code]) => {
    running.delete(child)
    return { code: code as number | null, output }
  })
  return { child, finished }
}

/** Runs a command-line tool (seed, migrate, a server that is expected to refuse) to its end. */
function runNode(args: string[], env: Record<string, string>): Promise<Finished> {
  return spawnNode(args, env).finished
}

/** Starts the server as `npm start` does, on a free port, and waits until it is ready. */
async function startServer(database: string): Promise<Running> {
  const port = await freePort()
  const { child, finished } = spawnNode([SERVER], { SERVER_PORT: String(port), ...envFor(database) })
  const url = `http://127.0.0.1:${port}`
  let exited: Finished | undefined
  finished.then((result) => {
    exited = result
  })
  for (let attempt = 0; attempt < 300 && exited === undefined; attempt++) {
    const ready = await fetch(`${url}/readyz`).then(
      (response) => response.ok,
      () => false,
    )
    if (ready) {
      return {
        child,
        pid: child.pid as number,
        url,
        async stop() {
          child.kill('SIGTERM')
          return (await finished).code
        },
      }
    }
    await sleep(100)
  }
  child.kill('SIGKILL')
  assert.fail(`the server did not become ready: ${JSON.stringify(exited ?? (await finished))}`)
}

async function createBook(server: Running): Promise<string> {
  const created = await fetch(`${server.url}/v1/books`, jsonRequest('POST', BOOK))
  assert.equal(created.status, 201)
  return (await bodyOf(created)).id
}

async function totalBooks(server: Running): Promise<number> {
  const listed = await fetch(`${server.url}/v1/books`, { headers: { prefer: 'count=exact' } })
  assert.equal(listed.status, 200)
  return Number(listed.headers.get('x-total-count'))
}

/** The refusal: the busy exit code, and one line naming the folder and its holder, with no stack trace. */
function assertRefused(result: Finished, folder: string, pid: number) {
  assert.equal(result.code, EX_TEMPFAIL, result.output)
  const lines = result.output.split('\n').filter((line) => line.includes(`database ${folder} `))
  assert.equal(lines.length, 1, result.output)
  assert.match(
    lines[0] as string,
    new RegExp(`in use by pid ${pid} on host ${hostname().replaceAll('.', '\\.')} \\(node .*server\\.ts, since `),
  )
  assert.doesNotMatch(result.output, /^\s+at /m)
}

/** Stops the server with SIGTERM, expecting exit code 0, and starts it again on the same folder. */
async function restart(server: Running, folder: string): Promise<Running> {
  assert.equal(await server.stop(), 0)
  return startServer(folder)
}

describe('one owner per embedded database folder', () => {
  it('when seed runs beside the server, then it is refused naming the server, and no data is lost', async () => {
    const folder = newFolder()
    let server = await startServer(folder)
    const id = await createBook(server)

    assertRefused(await runNode([SEED], { DB_EMBEDDED_PATH: folder }), folder, server.pid)
    assert.equal(await totalBooks(server), 1)

    server = await restart(server, folder)
    assert.equal(await totalBooks(server), 1)
    assert.equal((await bodyOf(await fetch(`${server.url}/v1/books/${id}`))).title, BOOK.title)
    assert.equal(await server.stop(), 0)

    const seeded = await runNode([SEED], { DB_EMBEDDED_PATH: folder })
    assert.equal(seeded.code, 0, seeded.output)
    assert.match(seeded.output, /"seeded books"/)
    server = await startServer(folder)
    assert.equal(await totalBooks(server), 1 + SEEDED)
    assert.equal(await server.stop(), 0)
    assert.equal(existsSync(join(folder, LOCK_FILE)), false, 'the lock is gone once the server stopped')
  })

  it('when migrate or a second server runs beside the server, then each is refused, and no data is lost', async () => {
    const folder = newFolder()
    let server = await startServer(folder)
    await createBook(server)

    assertRefused(await runNode([MIGRATE, 'up'], { DB_EMBEDDED_PATH: folder }), folder, server.pid)
    const second = await runNode([SERVER], { DB_EMBEDDED_PATH: folder, SERVER_PORT: String(await freePort()) })
    assertRefused(second, folder, server.pid)
    assert.equal(await totalBooks(server), 1)

    server = await restart(server, folder)
    assert.equal(await totalBooks(server), 1)
    assert.equal(await server.stop(), 0)

    const migrated = await runNode([MIGRATE, 'up'], { DB_EMBEDDED_PATH: folder })
    assert.equal(migrated.code, 0, migrated.output)
    server = await startServer(folder)
    assert.equal(await totalBooks(server), 1)
    assert.equal(await server.stop(), 0)
  })

  it('when the server was killed with SIGKILL, then the next start takes over its stale lock', async () => {
    const folder = newFolder()
    const killed = await startServer(folder)
    await createBook(killed)
    killed.child.kill('SIGKILL')
    await once(killed.child, 'exit')
    const lock = JSON.parse(readFileSync(join(folder, LOCK_FILE), 'utf8'))
    assert.equal(lock.pid, killed.pid, 'the killed server left its lock behind')

    const next = await startServer(folder)
    assert.equal(JSON.parse(readFileSync(join(folder, LOCK_FILE), 'utf8')).pid, next.pid)
    assert.equal(await totalBooks(next), 1)
    assert.equal(await next.stop(), 0)
  })

  // Two processes that find the same stale lock race to replace it. Processes started together rarely hit the
  // narrow window, so each test pauses this process at one point of its takeover and runs a real second process
  // through the whole of lockFolder meanwhile.
  it('when another process takes over the stale lock after we read it, then we leave its lock alone', async () => {
    const folder = newFolder()
    const lockFile = join(folder, LOCK_FILE)
    writeFileSync(lockFile, JSON.stringify(lockOf(await deadPid())))
    const other = pausedAt('readFileSync', (path) => path === lockFile, folder)
    try {
      await assert.rejects(lockFolder(folder), (error: Error) => {
        assert.match(error.message, new RegExp(`in use by pid ${other.pid()} `))
        return true
      })
      assert.equal(other.verdict(), 'took')
      assert.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, other.pid())
    } finally {
      other.stop()
    }
  })

  it('when another process finds the stale lock while we are replacing it, then it leaves the takeover to us', async () => {
    const folder = newFolder()
    const lockFile = join(folder, LOCK_FILE)
    writeFileSync(lockFile, JSON.stringify(lockOf(await deadPid())))
    const other = pausedAt('renameSync', (_from, to) => to === lockFile, folder)
    try {
      const lock = await lockFolder(folder)
      assert.match(other.verdict(), /cannot be locked: .* another process has been taking it over/)
      assert.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, process.pid)
      lock.release()
    } finally {
      other.stop()
    }
  })

  it('when the lock names a process on another host, then it is refused with the file to remove, untouched', async () => {
    const folder = newFolder()
    const lockFile = join(folder, LOCK_FILE)
    const foreign = JSON.stringify({ ...lockOf(4242), host: 'elsewhere.example' })
    writeFileSync(lockFile, foreign)
    const result = await runNode([SEED], { DB_EMBEDDED_PATH: folder })
    assert.equal(result.code, EX_TEMPFAIL, result.output)
    assert.match(result.output, /locked by pid 4242 on host elsewhere\.example \(node src\/server\.ts, since /)
    assert.match(
      result.output,
      /it refreshed the lock \d+ s ago: stop it first \(a lock not refreshed for 30 s is taken over\)/,
    )
    assert.ok(result.output.includes(`remove ${lockFile} if no such process runs`), result.output)
    assert.equal(readFileSync(lockFile, 'utf8'), foreign)
  })

  it('when a lock from another host has not been refreshed for over 30 s, then it is abandoned and taken over', async () => {
    const folder = newFolder()
    const lockFile = join(folder, LOCK_FILE)
    writeFileSync(lockFile, JSON.stringify({ ...lockOf(4242), host: 'elsewhere.example' }))
    const longAgo = new Date(Date.now() - 31_000)
    utimesSync(lockFile, longAgo, longAgo)
    const lock = await lockFolder(folder)
    try {
      assert.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, process.pid)
    } finally {
      lock.release()
    }
  })

  it('when a process holds the folder, then it refreshes its lock file every few seconds', async () => {
    const folder = newFolder()
    const lockFile = join(folder, LOCK_FILE)
    const lock = await lockFolder(folder)
    try {
      const longAgo = new Date(Date.now() - 60_000)
      utimesSync(lockFile, longAgo, longAgo)
      await sleep(6_000)
      assert.ok(Date.now() - statSync(lockFile).mtimeMs < 6_000, 'refreshed within the heartbeat')
    } finally {
      lock.release()
    }
  })

  it('when the lock names our own pid, then it is an earlier life of this process and is taken over', async () => {
    const folder = newFolder()
    const earlier = JSON.stringify(lockOf(process.pid, '2020-01-01T00:00:00.000Z'))
    writeFileSync(join(folder, LOCK_FILE), earlier)
    const database = await openPglite(folder)
    try {
      const lock = JSON.parse(readFileSync(join(folder, LOCK_FILE), 'utf8'))
      assert.equal(lock.pid, process.pid)
      assert.notEqual(lock.since, '2020-01-01T00:00:00.000Z')
      // …but the same folder opened twice in one process is refused: that lock is alive.
      await assert.rejects(openPglite(folder), /is already open in this process/)
    } finally {
      await database.close()
    }
    assert.equal(existsSync(join(folder, LOCK_FILE)), false)
  })

  it('when seed runs beside a server on PostgreSQL, then it works and the server serves the seeded books', {
    skip: noPostgresServer,
  }, async () => {
    const database = await createServerDatabase()
    try {
      const migrated = await runNode([MIGRATE, 'up'], { DATABASE_URL: database.url })
      assert.equal(migrated.code, 0, migrated.output)
      const server = await startServer(database.url)
      const seeded = await runNode([SEED], { DATABASE_URL: database.url })
      assert.equal(seeded.code, 0, seeded.output)
      assert.equal(await totalBooks(server), SEEDED)
      assert.equal(await server.stop(), 0)
    } finally {
      await database.drop()
    }
  })

  // Tests run as root, whom permissions do not stop: a file in the way fails mkdir, and /proc takes no new file.
  for (const [what, prepare] of [
    ['a file stands where the folder should be', fileInTheWay],
    ['no file can be created in the folder', () => '/proc'],
  ] as const) {
    it(`when ${what}, then server, seed and migrate exit naming the folder, DATABASE_URL and DB_EMBEDDED_PATH`, async () => {
      const folder = prepare()
      for (const args of [[SERVER], [SEED], [MIGRATE, 'up']]) {
        const result = await runNode(args, { DB_EMBEDDED_PATH: folder, SERVER_PORT: String(await freePort()) })
        assert.equal(result.code, EX_CANTCREAT, result.output)
        const lines = result.output.split('\n').filter((line) => line.includes('DB_EMBEDDED_PATH'))
        assert.equal(lines.length, 1, result.output)
        assert.match(lines[0] as string, /set DATABASE_URL to use a PostgreSQL server, or mount a writable volume at/)
        assert.ok((lines[0] as string).includes(`folder ${folder} cannot be created or written`), lines[0])
        assert.doesNotMatch(result.output, /^\s+at /m)
      }
    })
  }
})

function lockOf(pid: number, since = new Date().toISOString()) {
  return { pid, host: hostname(), command: 'node src/server.ts', since }
}

/** A folder path whose parent is a regular file. */
function fileInTheWay(): string {
  const file = join(newFolder(), 'a-file')
  writeFileSync(file, '')
  return join(file, 'pglite')
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn('true')
  await once(child, 'exit')
  return child.pid as number
}

interface Contender {
  pid(): number
  /** 'took', or the message lockFolder refused it with. */
  verdict(): string
  stop(): void
}

/**
 * Holds this process the first time it calls fs[name] with arguments that `matches`: meanwhile another process runs
 * lockFolder on `folder` to its verdict (and keeps what it took). The module's fs imports see the wrapper through
 * syncBuiltinESMExports; the original comes back after that one call.
 */
function pausedAt(
  name: 'readFileSync' | 'renameSync',
  matches: (...args: unknown[]) => boolean,
  folder: string,
): Contender {
  const original = fs[name] as (...args: unknown[]) => unknown
  const verdictFile = join(newFolder(), 'verdict')
  let child: ChildProcess | undefined
  const restore = () => {
    Object.assign(fs, { [name]: original })
    syncBuiltinESMExports()
  }
  Object.assign(fs, {
    [name]: (...args: unknown[]) => {
      if (!matches(...args)) return original(...args)
      restore()
      // A read returns what the file held before the other process went in; a rename waits for it.
      const result = name === 'readFileSync' ? original(...args) : undefined
      child = spawn(process.execPath, ['--input-type=module', '-e', contenderScript(folder, verdictFile)], {
        stdio: 'inherit',
      })
      running.add(child)
      const pause = new Int32Array(new SharedArrayBuffer(4))
      for (let waited = 0; !fs.existsSync(verdictFile); waited += 20) {
        if (waited > 30_000) throw new Error('the other process gave no verdict within 30 s')
        Atomics.wait(pause, 0, 0, 20)
      }
      return name === 'readFileSync' ? result : original(...args)
    },
  })
  syncBuiltinESMExports()
  return {
    pid: () => child?.pid as number,
    verdict: () => fs.readFileSync(verdictFile, 'utf8'),
    stop() {
      restore()
      child?.kill('SIGKILL')
    },
  }
}

function contenderScript(folder: string, verdictFile: string): string {
  return `
    import { renameSync, writeFileSync } from 'node:fs'
    const { lockFolder } = await import(${JSON.stringify(FOLDER_LOCK)})
    let verdict = 'took'
    try {
      await lockFolder(${JSON.stringify(folder)})
    } catch (error) {
      verdict = error.message
    }
    // Written whole, then renamed: the waiting process never reads half a verdict.
    writeFileSync(${JSON.stringify(`${verdictFile}.tmp`)}, verdict)
    renameSync(${JSON.stringify(`${verdictFile}.tmp`)}, ${JSON.stringify(verdictFile)})
    setInterval(() => {}, 60_000)`
}
