// TLS for a throwaway PostgreSQL cluster, as CloudNativePG sets it up: a CA of its own (openssl), a server
// certificate for the names clients dial, and ssl=on. A second CA signs nothing the server presents, for refusals.
import { execFile } from 'node:child_process'
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import postgres from 'postgres'
import type { ThrowawayPostgres } from './throwaway-postgres.ts'
import { programMissing } from './tools.ts'

const run = promisify(execFile)
const OPENSSL = '/usr/bin/openssl'

export const opensslMissing = () => programMissing(OPENSSL, 'apt-get install openssl')

export interface TestCertificates {
  /** PEM file of the CA that signed the server's certificate. */
  caFile: string
  /** PEM file of a CA that signed nothing the server presents. */
  otherCaFile: string
  serverCertFile: string
  serverKeyFile: string
  remove(): void
}

const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

async function selfSignedCa(folder: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(folder, `${name}.crt`)
  const key = join(folder, `${name}.key`)
  await run(OPENSSL, ['req', '-x509', ...ec, '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`])
  return { cert, key }
}

/** A CA and a server certificate valid for `dnsNames` (and 127.0.0.1 only when listed in `ipAddresses`). */
export async function makeCertificates(dnsNames: string[], ipAddresses: string[] = []): Promise<TestCertificates> {
  const folder = mkdtempSync(join(tmpdir(), 'myapp-tls-'))
  // The server runs as postgres and reads its key from here.
  chmodSync(folder, 0o755)
  const ca = await selfSignedCa(folder, 'test-ca')
  const other = await selfSignedCa(folder, 'other-ca')
  const serverKeyFile = join(folder, 'server.key')
  const serverCertFile = join(folder, 'server.crt')
  const request = join(folder, 'server.csr')
  const extensions = join(folder, 'server.ext')
  const altNames = [...dnsNames.map((name) => `DNS:${name}`), ...ipAddresses.map((address) => `IP:${address}`)]
  writeFileSync(extensions, `subjectAltName=${altNames.join(',')}\nextendedKeyUsage=serverAuth\n`)
  await run(OPENSSL, ['req', ...ec, '-keyout', serverKeyFile, '-out', request, '-subj', `/CN=${dnsNames[0]}`])
  await run(OPENSSL, [
    'x509',
    '-req',
    '-in',
    request,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-out',
    serverCertFile,
    '-days',
    '2',
    '-extfile',
    extensions,
  ])
  for (const file of [serverCertFile, ca.cert, other.cert]) chmodSync(file, 0o644)
  // PostgreSQL refuses a key that others can read; as root, hand it to the postgres user (uid from its home).
  const { stdout } = await run('id', ['-u', 'postgres'])
  chownSync(serverKeyFile, Number(stdout.trim()), 0)
  chmodSync(serverKeyFile, 0o600)
  return {
    caFile: ca.cert,
    otherCaFile: other.cert,
    serverCertFile,
    serverKeyFile,
    remove: () => rmSync(folder, { recursive: true, force: true }),
  }
}

/** Turns TLS on in a running throwaway cluster (a reload is enough since PostgreSQL 10). */
export async function enableTls(cluster: ThrowawayPostgres, certificates: TestCertificates): Promise<void> {
  const sql = postgres(cluster.url, { max: 1, onnotice: () => {} })
  try {
    await sql.unsafe(`ALTER SYSTEM SET ssl_cert_file = '${certificates.serverCertFile}'`)
    await sql.unsafe(`ALTER SYSTEM SET ssl_key_file = '${certificates.serverKeyFile}'`)
    await sql.unsafe(`ALTER SYSTEM SET ssl = on`)
    await sql`SELECT pg_reload_conf()`
    // The reload is asynchronous: wait until the server reports it.
    for (let attempt = 0; attempt < 50; attempt++) {
      const [row] = await sql<{ ssl: string }[]>`SELECT current_setting('ssl') AS ssl`
      if (row?.ssl === 'on') return
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error('ssl did not turn on after pg_reload_conf()')
  } finally {
    await sql.end({ timeout: 1 })
  }
}
