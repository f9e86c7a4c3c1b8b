// DB_SSLMODE=verify-full with DB_SSLROOTCERT, as the overlays set them against CloudNativePG's CA, on a real
// PostgreSQL with TLS on: the service connects only to a server whose certificate chains to that CA and names
// the host it dialled, and DB_SSLMODE applies to a DATABASE_URL as much as to DB_*.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { parseConfig } from '../../../src/config/config.ts'
import { openPostgres } from '../../../src/db/postgres.ts'
import { describe } from '../../helpers/describe.ts'
import {
  startThrowawayPostgres,
  type ThrowawayPostgres,
  throwawayPostgresMissing,
} from '../../helpers/throwaway-postgres.ts'
import { enableTls, makeCertificates, opensslMissing, type TestCertificates } from '../../helpers/tls-postgres.ts'

const skip = throwawayPostgresMissing() || opensslMissing()

describe('TLS to PostgreSQL with verify-full', { skip }, () => {
  let cluster: ThrowawayPostgres
  let certificates: TestCertificates
  // The certificate names localhost only, as CloudNativePG's names its Services only.
  let byName: string
  let byAddress: string
  before(async () => {
    cluster = await startThrowawayPostgres()
    certificates = await makeCertificates(['localhost'])
    await enableTls(cluster, certificates)
    byAddress = cluster.url
    byName = cluster.url.replace('127.0.0.1', 'localhost')
  })
  after(async () => {
    await cluster?.destroy()
    certificates?.remove()
  })

  /** Opens the pool the service would open for these variables and runs one statement through it. */
  async function connect(env: Record<string, string>) {
    const { database } = parseConfig({ DB_CONNECT_TIMEOUT: '2s', ...env })
    assert.equal(database.kind, 'postgres')
    if (database.kind !== 'postgres') throw new Error('unreachable')
    const db = openPostgres(database)
    try {
      const rows = await db.query<{ ssl: boolean; version: string }>(
        'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      )
      return rows[0]
    } finally {
      await db.close()
    }
  }

  it('when the URL has no sslmode and DB_SSLMODE=verify-full names the CA, then the connection is TLS', async () => {
    const session = await connect({
      DATABASE_URL: byName,
      DB_SSLMODE: 'verify-full',
      DB_SSLROOTCERT: certificates.caFile,
    })
    assert.equal(session?.ssl, true)
    assert.match(session?.version ?? '', /^TLSv1\.[23]$/)
  })

  it('when DB_* are used with verify-full and the CA, then the connection is TLS too', async () => {
    const url = new URL(byName)
    const session = await connect({
      DB_HOST: url.hostname,
      DB_PORT: url.port,
      DB_USER: 'postgres',
      DB_NAME: 'postgres',
      DB_SSLMODE: 'verify-full',
      DB_SSLROOTCERT: certificates.caFile,
    })
    assert.equal(session?.ssl, true)
  })

  it('when the server is checked against another CA, then the connection is refused', async () => {
    await assert.rejects(
      connect({ DATABASE_URL: byName, DB_SSLMODE: 'verify-full', DB_SSLROOTCERT: certificates.otherCaFile }),
      (error: NodeJS.ErrnoException) => {
        assert.match(String(error.code), /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/)
        return true
      },
    )
  })

  it('when the host dialled is not a name in the certificate, then the connection is refused', async () => {
    await assert.rejects(
      connect({ DATABASE_URL: byAddress, DB_SSLMODE: 'verify-full', DB_SSLROOTCERT: certificates.caFile }),
      (error: NodeJS.ErrnoException) => {
        assert.equal(error.code, 'ERR_TLS_CERT_ALTNAME_INVALID')
        return true
      },
    )
  })

  it('when verify-full has no CA file, then the system CAs do not vouch for the cluster and it is refused', async () => {
    await assert.rejects(
      connect({ DATABASE_URL: byName, DB_SSLMODE: 'verify-full' }),
      (error: NodeJS.ErrnoException) => {
        assert.match(String(error.code), /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/)
        return true
      },
    )
  })

  it('when the URL asks for disable but DB_SSLMODE=verify-full, then the stricter applies and a wrong CA is refused', async () => {
    await assert.rejects(
      connect({
        DATABASE_URL: `${byName}?sslmode=disable`,
        DB_SSLMODE: 'verify-full',
        DB_SSLROOTCERT: certificates.otherCaFile,
      }),
      /certificate/i,
    )
  })

  it('when nothing asks for TLS, then the connection is plaintext (the default is unchanged)', async () => {
    assert.equal((await connect({ DATABASE_URL: byName }))?.ssl, false)
  })
})
