// The README's commands, run as a new user pastes them: "Run it", the PostgreSQL quick start and "Try it" with its
// secured mode, in a copy of the repository with its own `npm ci`, in a shell without this test run's environment.
import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import postgres from 'postgres'
import { describe } from '../../helpers/describe.ts'
import { ADMIN_URL, postgresServerUnavailable } from '../../helpers/postgres-server.ts'
import { freePort, programMissing } from '../../helpers/tools.ts'

const run = promisify(execFile)
const ROOT = new URL('../../../', import.meta.url).pathname
const README = readFileSync(join(ROOT, 'README.md'), 'utf8')

/** The fenced `sh` blocks of the README section under `heading`, in order. */
function shellBlocks(heading: string): string[] {
  const start = README.indexOf(`\n${heading}\n`)
  assert.notEqual(start, -1, `README has no "${heading}" section`)
  const next = README.indexOf('\n## ', start + heading.length + 2)
  const section = README.slice(start, next === -1 ? undefined : next)
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1] as string)
}

const [runEmbedded, runOnPostgres] = shellBlocks('## Run it')
const [tryIt, startVerifier, tryVerifier, startSecured, trySecured] = shellBlocks('## Try it')

// A fresh shell: no variables of this test run, of npm, or of the repository's own node_modules/.bin.
function freshShellEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(npm_|NODE_|DATABASE_URL$|DB_|TEST_|REQUIRE_TEST_SERVICES$)/.test(name)) continue
    env[name] = value
  }
  env.PATH = (process.env.PATH ?? '')
    .split(':')
    .filter((entry) => !entry.includes('node_modules'))
    .join(':')
  return { ...env, ...extra }
}

const skip =
  programMissing('/usr/bin/curl', 'apt-get install curl') ||
  programMissing('/usr/bin/psql', 'apt-get install postgresql-client') ||
  (await postgresServerUnavailable()) ||
  false

describe("the README's commands", { skip }, () => {
  let copy: string
  let port: number
  let server: ChildProcess | undefined
  let serverOutput = ''
  const suffix = `${process.pid}_${Date.now().toString(36)}`
  const role = `myapp_user_${suffix}`
  const database = `myapp_db_${suffix}`
  const admin = new URL(ADMIN_URL)
  const adminSql = () => postgres(ADMIN_URL, { max: 1, onnotice: () => {} })

  // The one change to the commands: the port (another process may hold 8080) and the role and database names
  // (the shared server may have the README's), plus where the test's server is when it is not the default.
  const adapt = (block: string) => {
    let text = block
      .replaceAll('localhost:8080', `localhost:${port}`)
      .replaceAll('myapp_user', role)
      .replaceAll('myapp_db', database)
    if (admin.host !== '127.0.0.1:5432') {
      text = text
        .replaceAll('127.0.0.1:5432', admin.host)
        .replaceAll('-h 127.0.0.1', `-h ${admin.hostname} -p ${admin.port}`)
    }
    return text
  }
  const environment = () =>
    freshShellEnvironment({
      SERVER_PORT: String(port),
      ...(admin.password === '' ? {} : { PGPASSWORD: decodeURIComponent(admin.password) }),
    })

  async function startInBackground(block: string) {
    serverOutput = ''
    server = spawn('bash', ['-euo', 'pipefail', '-c', adapt(block)], {
      cwd: copy,
      env: environment(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    server.stdout?.on('data', (chunk) => {
      serverOutput += chunk
    })
    server.stderr?.on('data', (chunk) => {
      serverOutput += chunk
    })
    const deadline = Date.now() + 120_000
    while (Date.now() < deadline) {
      if (server.exitCode !== null) assert.fail(`the block exited with ${server.exitCode}:\n${serverOutput}`)
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (response) => response.status === 200,
        () => false,
      )
      if (ready) return
      await sleep(250)
    }
    assert.fail(`no /readyz 200 within 120 s:\n${serverOutput}`)
  }

  async function stopServer() {
    const child = server
    server = undefined
    if (child === undefined || child.exitCode !== null || child.pid === undefined) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    process.kill(-child.pid, 'SIGTERM')
    await exited
  }

  async function tryTheApi() {
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', adapt(tryIt as string)], {
      cwd: copy,
      env: environment(),
      timeout: 60_000,
    })
    // Output in order: the Location, the book, the list's headers up to their blank line, the book put back,
    // the DELETE's status, the 422 problem.
    const lines = stdout.split('\n')
    const blank = lines.indexOf('\r')
    const [location, created] = lines
    const headers = lines.slice(2, blank).join('\n')
    const [updated, deleted, invalid] = lines.slice(blank + 1)
    assert.match(location ?? '', /^\/v1\/books\/[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    const book = JSON.parse(created ?? '')
    assert.equal(book.title, 'The Hobbit')
    assert.equal(book.status, 'pending')
    assert.match(headers, /^HTTP\/1\.1 200 OK\r/)
    assert.match(headers, /\nx-total-count: 1\r/i)
    const edited = JSON.parse(updated ?? '')
    assert.equal(edited.status, 'verified')
    assert.equal(edited.id, book.id)
    assert.equal(edited.created_at, book.created_at)
    assert.equal(deleted, '204')
    const problem = JSON.parse(invalid ?? '')
    assert.equal(problem.status, 422)
    assert.equal(problem.errors.title, 'Must not be empty')
    assert.equal(problem.errors.published_date, 'This field is required')
  }

  before(async () => {
    assert.ok(
      runEmbedded && runOnPostgres && tryIt && startVerifier && tryVerifier && startSecured && trySecured,
      'README: Run it has two sh blocks, Try it five (the API; the verifier: start, try; the secured mode: start, call)',
    )
    copy = mkdtempSync(join(tmpdir(), 'myapp-readme-'))
    // What a clone holds: the tracked files and the new ones git does not ignore (no node_modules, no data).
    const { stdout } = await run('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: ROOT })
    for (const file of stdout.split('\0').filter(Boolean)) {
      mkdirSync(dirname(join(copy, file)), { recursive: true })
      cpSync(join(ROOT, file), join(copy, file))
    }
    port = await freePort()
  })

  after(async () => {
    await stopServer()
    const sql = adminSql()
    try {
      await sql.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
      await sql.unsafe(`DROP ROLE IF EXISTS ${role}`)
    } finally {
      await sql.end()
    }
    rmSync(copy, { recursive: true, force: true })
  })

  it('when "Run it" is pasted into a fresh shell, then npm ci && npm start serves from the embedded database', async () => {
    assert.match(runEmbedded as string, /^npm ci && npm start\n$/)
    await startInBackground(runEmbedded as string)
    const health = await fetch(`http://127.0.0.1:${port}/readyz`)
    assert.equal(health.status, 200)
    assert.match(serverOutput, /"database":\{"kind":"embedded"/)
  })

  it('when "Try it" is pasted next, then every command answers as the README shows', async () => {
    await tryTheApi()
  })

  it('when the verifier is started as the README shows, then the book with a cover is verified', async () => {
    // Its probes on a port of their own: this run's SERVER_PORT is the books service's.
    const verifierPort = await freePort()
    const verifier = spawn('bash', ['-euo', 'pipefail', '-c', adapt(startVerifier as string)], {
      cwd: copy,
      env: { ...environment(), SERVER_PORT: String(verifierPort) },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    verifier.stdout?.on('data', (chunk) => {
      output += chunk
    })
    verifier.stderr?.on('data', (chunk) => {
      output += chunk
    })
    try {
      const deadline = Date.now() + 60_000
      for (;;) {
        const ready = await fetch(`http://127.0.0.1:${verifierPort}/readyz`).then(
          (response) => response.ok,
          () => false,
        )
        if (ready) break
        assert.ok(Date.now() < deadline && verifier.exitCode === null, `the verifier is not ready:\n${output}`)
        await sleep(250)
      }
      const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', adapt(tryVerifier as string)], {
        cwd: copy,
        env: environment(),
        timeout: 60_000,
      })
      const book = JSON.parse(stdout.trim().split('\n').at(-1) ?? '')
      assert.equal(book.title, 'Tehanu')
      assert.equal(book.status, 'verified', output)
    } finally {
      if (verifier.pid !== undefined && verifier.exitCode === null) {
        const exited = new Promise((resolve) => verifier.once('exit', resolve))
        process.kill(-verifier.pid, 'SIGTERM')
        await exited
      }
      await stopServer()
    }
  })

  it('when the secured mode is pasted, then the service trusts the development key and a reader token is served', async () => {
    await startInBackground(startSecured as string)
    assert.match(serverOutput, /"auth":\{"mode":"jwt"/)
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', adapt(trySecured as string)], {
      cwd: copy,
      env: environment(),
      timeout: 60_000,
    })
    assert.deepEqual(stdout.trim().split('\n'), ['401', '200'])
    await stopServer()
  })

  it('when the PostgreSQL quick start is pasted, then it creates the role and database, migrates and serves', async () => {
    await startInBackground(runOnPostgres as string)
    assert.match(serverOutput, /CREATE ROLE/)
    assert.match(serverOutput, /CREATE DATABASE/)
    assert.match(serverOutput, /"kind":"postgres"/)
  })

  it('when "Try it" is pasted against PostgreSQL, then it answers the same', async () => {
    await tryTheApi()
    await stopServer()
  })
})
