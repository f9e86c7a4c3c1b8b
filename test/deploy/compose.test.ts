// compose.yml read, not run (no engine here): every image pinned, every file it mounts present, every variable
// one the service knows, no secret with a default, the observability services behind their profile.
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { it } from 'node:test'
import { parse } from 'yaml'
import { EnvSchema } from '../../src/config/config.ts'
import { describe } from '../helpers/describe.ts'

const ROOT = new URL('../../', import.meta.url).pathname
const text = readFileSync(`${ROOT}compose.yml`, 'utf8')
interface Service {
  image?: string
  build?: { context: string; target?: string }
  volumes?: string[]
  environment?: Record<string, string>
  profiles?: string[]
  depends_on?: Record<string, { condition: string }> | string[]
}
const compose = parse(text, { merge: true }) as { services: Record<string, Service> }
const services = compose.services

describe('compose.yml', () => {
  it('when images are named, then each has a pinned tag', () => {
    for (const [name, service] of Object.entries(services)) {
      assert.ok(service.image, `${name} names an image`)
      assert.match(service.image, /^[\w./-]+:[\w.-]+$/, `${name}: ${service.image}`)
      assert.doesNotMatch(service.image, /:latest$/)
    }
  })

  it('when the app is built, then the Dockerfile has the target stage', () => {
    const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8')
    for (const service of Object.values(services)) {
      if (service.build === undefined) continue
      assert.ok(existsSync(`${ROOT}${service.build.context}/Dockerfile`))
      assert.match(dockerfile, new RegExp(`^FROM \\S+ AS ${service.build.target}$`, 'm'))
    }
  })

  it('when files are mounted, then each exists in the repository', () => {
    const mounts = Object.values(services).flatMap((service) => service.volumes ?? [])
    const files = mounts.filter((mount) => mount.startsWith('./'))
    assert.ok(files.length >= 6)
    for (const mount of files) assert.ok(existsSync(`${ROOT}${mount.split(':')[0]}`), mount)
  })

  it('when the app and migration get variables, then each is one the service reads', () => {
    const known = new Set(Object.keys(EnvSchema.properties))
    for (const name of ['app', 'migrate']) {
      for (const variable of Object.keys(services[name]?.environment ?? {})) {
        assert.ok(known.has(variable), `${name}: ${variable}`)
      }
    }
  })

  it('when a secret is referenced, then it has no default and must come from .env', () => {
    for (const match of text.matchAll(/\$\{(DB_PASS|DATABASE_URL|OTEL_EXPORTER_OTLP_HEADERS)([^}]*)\}/g)) {
      assert.match(match[2] as string, /^:\?/, `${match[0]} must be required, not defaulted`)
    }
  })

  it('when started, then the app waits for a successful migration, which waits for a healthy database', () => {
    assert.deepEqual(services.app?.depends_on, { migrate: { condition: 'service_completed_successfully' } })
    assert.deepEqual(services.migrate?.depends_on, { db: { condition: 'service_healthy' } })
    assert.deepEqual(services.migrate && (services.migrate as { command: string[] }).command, [
      'dist/bin/migrate.js',
      'up',
    ])
  })

  it('when the observability profile is off, then only the database, migration and app run', () => {
    const always = Object.entries(services)
      .filter(([, service]) => service.profiles === undefined)
      .map(([name]) => name)
    assert.deepEqual(always.sort(), ['app', 'db', 'migrate'])
    for (const name of ['prometheus', 'grafana', 'otel-collector', 'jaeger']) {
      assert.deepEqual(services[name]?.profiles, ['observability'], name)
    }
  })

  it("when Prometheus scrapes in the profile, then it targets the app's port and loads the SLO rules", () => {
    const config = parse(readFileSync(`${ROOT}deploy/compose/prometheus.yml`, 'utf8'))
    assert.deepEqual(config.scrape_configs[0].static_configs[0].targets, ['app:8080'])
    assert.equal(config.scrape_configs[0].job_name, 'myapp', 'the job label the rules and dashboard select')
  })
})
