// One process at a time in an embedded database folder: a lock file in it, in the manner of PostgreSQL's
// postmaster.pid, naming the process that holds the folder.
import { createHash } from 'node:crypto'
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from 'node:fs'
import { hostname } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { codeOf, EmbeddedFolderError } from './errors.ts'

export const LOCK_FILE = 'owner.lock'

// sysexits.h: a folder that cannot be created or written, and one that is busy until its holder stops.
const EX_CANTCREAT = 73
const EX_TEMPFAIL = 75

// What a read-only root filesystem, a missing mount, a file in the way or missing permissions look like.
const NOT_WRITABLE = new Set(['EROFS', 'EACCES', 'EPERM', 'ENOENT', 'ENOTDIR', 'EEXIST'])

// A creator writes its record right after creating the file; a file still empty after this long is refused.
const ATTEMPTS = 40
const RETRY_MS = 25

// A holder on another host (another container on a shared volume, a replaced pod) cannot be asked whether it is
// alive, so the holder refreshes its lock file's time, and one not refreshed for a while is abandoned. The margin
// is far above any pause of a healthy process's event loop.
const HEARTBEAT_MS = 5_000
const ABANDONED_AFTER_MS = 30_000

/** The holder of a folder, one line of JSON in the lock file. */
interface Owner {
  pid: number
  host: string
  command: string
  since: string
}

// Folders this process holds or is taking: a lock file with our own pid is stale only for a folder not in here.
const heldHere = new Set<string>()

export interface FolderLock {
  /** Removes the lock file; an exit does it too. */
  release(): void
}

/** Creates the folder when missing and makes this process its one user, or throws EmbeddedFolderError. */
export async function lockFolder(path: string): Promise<FolderLock> {
  const folder = resolve(path)
  try {
    mkdirSync(folder, { recursive: true })
  } catch (error) {
    throw notWritable(folder, error)
  }
  const key = realpathSync(folder)
  if (heldHere.has(key)) {
    throw new EmbeddedFolderError(`the embedded database ${folder} is already open in this process`, EX_TEMPFAIL)
  }
  heldHere.add(key)
  const lockFile = join(folder, LOCK_FILE)
  const record = `${JSON.stringify(ownerOfThisProcess())}\n`
  try {
    await take(folder, lockFile, record)
  } catch (error) {
    heldHere.delete(key)
    throw error
  }
  const heartbeat = setInterval(() => {
    try {
      const now = new Date()
      utimesSync(lockFile, now, now)
    } catch {
      // A lock file that cannot be touched any more is found out by whoever looks at it next.
    }
  }, HEARTBEAT_MS)
  heartbeat.unref()
  const release = () => {
    if (!heldHere.delete(key)) return
    clearInterval(heartbeat)
    process.off('exit', release)
    // Only our own record: a file that says otherwise is no longer ours to remove.
    if (readIfPresent(lockFile) === record) unlinkIfPresent(lockFile)
  }
  process.on('exit', release)
  return { release }
}

async function take(folder: string, lockFile: string, record: string): Promise<void> {
  let obstacle = 'stays unreadable'
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    if (createExclusive(folder, lockFile, record)) return
    const found = readIfPresent(lockFile)
    if (found === undefined) continue // released in the meantime
    const owner = parseOwner(found)
    if (owner !== undefined) {
      const state = stateOf(owner, lockFile)
      if (state !== 'stale') throw refusal(folder, lockFile, owner, state)
      if (replaceStale(folder, lockFile, found, record)) return
      obstacle = 'is stale, and another process has been taking it over for too long'
    }
    await sleep(RETRY_MS)
  }
  throw new EmbeddedFolderError(
    `the embedded database ${folder} cannot be locked: ${lockFile} ${obstacle}; remove it if no process uses the folder`,
    EX_TEMPFAIL,
  )
}

/**
 * Replaces the stale lock file `file`, whose content was `stale`, with `record`; false when another process got in
 * first. Two processes that find the same stale lock and each replace it would both believe they own the folder,
 * the second having replaced the first's live lock. So only the process that creates the claim named after the
 * stale content may replace it, and only while the file still holds that content. The claim holds our record, and
 * renaming it over the lock file replaces the stale lock in one step. A claim left by a process that died in
 * between is stale by the same rules and is taken over the same way.
 */
function replaceStale(folder: string, file: string, stale: string, record: string): boolean {
  const claim = `${file}.${createHash('sha256').update(stale).digest('hex').slice(0, 16)}`
  if (!createExclusive(folder, claim, record)) {
    const found = readIfPresent(claim)
    const claimer = found === undefined ? undefined : parseOwner(found)
    if (found === undefined || claimer === undefined || stateOf(claimer, claim) !== 'stale') return false
    if (!replaceStale(folder, claim, found, record)) return false
  }
  try {
    if (readIfPresent(file) !== stale) {
      unlinkIfPresent(claim)
      return false
    }
    renameSync(claim, file)
    return true
  } catch (error) {
    unlinkIfPresent(claim)
    throw error
  }
}

function ownerOfThisProcess(): Owner {
  return {
    pid: process.pid,
    host: hostname(),
    command: [basename(process.execPath), ...process.argv.slice(1)].join(' '),
    since: new Date().toISOString(),
  }
}

function stateOf(owner: Owner, file: string): 'alive' | 'stale' | 'elsewhere' {
  if (owner.host !== hostname()) return idleMs(file) > ABANDONED_AFTER_MS ? 'stale' : 'elsewhere'
  // Our own pid in a lock we do not hold is an earlier life of this process: a container restarted with the app as
  // PID 1 again.
  if (owner.pid === process.pid) return 'stale'
  try {
    process.kill(owner.pid, 0)
    return 'alive'
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return codeOf(error) === 'ESRCH' ? 'stale' : 'alive'
  }
}

/** How long ago `file` was last written or touched; 0 when it is gone. */
function idleMs(file: string): number {
  try {
    return Date.now() - statSync(file).mtimeMs
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return 0
    throw error
  }
}

function refusal(folder: string, lockFile: string, owner: Owner, state: 'alive' | 'elsewhere') {
  const holder = `pid ${owner.pid} on host ${owner.host} (${owner.command}, since ${owner.since})`
  return new EmbeddedFolderError(
    state === 'alive'
      ? `the embedded database ${folder} is in use by ${holder}: one process at a time; stop it first, or set DATABASE_URL to share a PostgreSQL server`
      : `the embedded database ${folder} is locked by ${holder}, which host ${hostname()} cannot check; it refreshed the lock ${Math.round(idleMs(lockFile) / 1000)} s ago: stop it first (a lock not refreshed for ${ABANDONED_AFTER_MS / 1000} s is taken over), or remove ${lockFile} if no such process runs`,
    EX_TEMPFAIL,
  )
}

function notWritable(folder: string, error: unknown): unknown {
  if (!NOT_WRITABLE.has(codeOf(error))) return error
  return new EmbeddedFolderError(
    `the embedded database folder ${folder} cannot be created or written (${(error as Error).message}): set DATABASE_URL to use a PostgreSQL server, or mount a writable volume at ${folder} (DB_EMBEDDED_PATH)`,
    EX_CANTCREAT,
  )
}

/** Creates `file` holding `content` unless it exists (O_EXCL); false when it does. */
function createExclusive(folder: string, file: string, content: string): boolean {
  let fd: number
  try {
    fd = openSync(file, 'wx')
  } catch (error) {
    if (codeOf(error) === 'EEXIST') return false
    throw notWritable(folder, error)
  }
  try {
    writeSync(fd, content)
    fsyncSync(fd)
  } catch (error) {
    closeSync(fd)
    unlinkIfPresent(file)
    throw notWritable(folder, error)
  }
  closeSync(fd)
  return true
}

function parseOwner(text: string): Owner | undefined {
  try {
    const owner = JSON.parse(text) as Partial<Owner>
    const valid =
      Number.isInteger(owner.pid) &&
      (owner.pid as number) > 0 &&
      typeof owner.host === 'string' &&
      typeof owner.command === 'string' &&
      typeof owner.since === 'string'
    return valid ? (owner as Owner) : undefined
  } catch {
    return undefined
  }
}

function readIfPresent(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return undefined
    throw error
  }
}

function unlinkIfPresent(file: string) {
  try {
    unlinkSync(file)
  } catch (error) {
    if (codeOf(error) !== 'ENOENT') throw error
  }
}
