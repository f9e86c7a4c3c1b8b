// compose.yml and compose.dev.yml read, without an engine (compose-run.test.ts runs them): every pulled image
// fully qualified and pinned, every mounted file present, .env reaching the app, no secret with a default, the
// app healthy only while /readyz answers and published on loopback, NATS with JetStream for the app's events as a
// non-root server, the observability services behind their profile (no stand-in images exist for them here, so
// this is all they get).
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { it } from 'node:test'
import { parse } from 'yaml'
import { EnvSchema } from '../../../src/config/config.ts'
import { configurationVariables, ROOT, setByCompose } from '../../helpers/compose-files.ts'
import { describe } from '../../helpers/describe.ts'

interface Service {
  image?: string
  build?: { context: string; target?: string }
  command?: string[]
  entrypoint?: string[]
  user?: string
  cap_drop?: string[]
  cap_add?: string[]
  security_opt?: string[]
  network_mode?: string
  env_file?: string[]
  volumes?: string[]
  environment?: Record<string, string>
  healthcheck?: { test: string[]; interval?: string }
  ports?: string[]
  profiles?: string[]
  read_only?: boolean
  depends_on?: Record<string, { condition: string }> | string[]
}
const read = (file: string) => {
  const text = readFileSync(`${ROOT}${file}`, 'utf8')
  return { text, services: (parse(text, { merge: true }) as { services: Record<string, Service> }).services }
}
const { text, services } = read('compose.yml')
const dev = read('compose.dev.yml')
const known = new Set(Object.keys(EnvSchema.properties))
/** The nats service's configuration file: where it comes from in the repository, and where the server reads it. */
const natsConfMount = (nats: Service) => {
  const mount = (nats.volumes ?? []).find((volume) => volume.endsWith('.conf:ro')) ?? ''
  const [source = '', target = ''] = mount.split(':')
  return { source: source.replace(/^\.\//, ''), target }
}

const SECRETS = ['DATABASE_URL', 'DB_PASS', 'OTEL_EXPORTER_OTLP_HEADERS', 'REDIS_URL', 'AUTH_JWT_PUBLIC_KEY']

describe('compose.yml', () => {
  it('when an image is pulled, then it names its registry and a pinned tag', () => {
    const pulled = Object.entries(services).filter(([, service]) => service.build === undefined)
    assert.ok(pulled.length >= 5)
    for (const [name, service] of pulled) {
      assert.match(service.image ?? '', /^[a-z0-9-]+(\.[a-z0-9-]+)+(:\d+)?\/[\w./-]+:[\w.-]+$/, name)
      assert.doesNotMatch(service.image ?? '', /:latest$/, name)
    }
    assert.equal(services.db?.image, 'docker.io/library/postgres:18.1-bookworm')
  })

  it('when the app and the migration are built, then from the Dockerfile target, as one local image', () => {
    const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8')
    for (const [file, target, name] of [
      [services, 'prod', 'localhost/myapp:local'],
      [dev.services, 'dev', 'localhost/myapp:dev'],
    ] as const) {
      const built = [file.app, file.migrate]
      for (const service of built) {
        assert.equal(service?.build?.target, target)
        assert.ok(existsSync(`${ROOT}${service?.build?.context}/Dockerfile`))
        assert.match(service?.image ?? '', new RegExp(`^\\$\\{[A-Z_]+:-${name}\\}$`))
      }
      assert.equal(built[0]?.image, built[1]?.image, 'one image, built once')
      assert.match(dockerfile, new RegExp(`^FROM \\S+ AS ${target}$`, 'm'))
    }
  })

  it('when files are mounted, then each exists in the repository', () => {
    const mounts = [...Object.values(services), ...Object.values(dev.services)].flatMap((s) => s.volumes ?? [])
    const files = mounts.filter((mount) => mount.startsWith('./'))
    assert.ok(files.length >= 9)
    for (const mount of files) assert.ok(existsSync(`${ROOT}${mount.split(':')[0]}`), mount)
  })

  it('when the app and migration get variables, then each is one the service reads', () => {
    for (const name of ['app', 'migrate']) {
      for (const variable of Object.keys(services[name]?.environment ?? {})) {
        assert.ok(known.has(variable), `${name}: ${variable}`)
      }
    }
  })

  it('when compose places the service in its network, then the app and the migration get its values', () => {
    for (const name of ['app', 'migrate'] as const) {
      for (const [variable, value] of Object.entries(setByCompose(name))) {
        assert.equal(services[name]?.environment?.[variable], value, `${name}: ${variable}`)
      }
    }
  })

  it('when .env sets a variable of the configuration reference, then it reaches the app and the migration', () => {
    const variables = configurationVariables()
    assert.ok(variables.length >= 50, `${variables.length} variables in the configuration`)
    for (const name of ['app', 'migrate'] as const) {
      const service = services[name] as Service
      const set = setByCompose(name)
      assert.deepEqual(service.env_file, ['.env'], name)
      for (const variable of variables) {
        assert.ok(known.has(variable), `${variable} is one the service reads`)
        const value = service.environment?.[variable]
        if (variable in set) {
          assert.equal(value, set[variable], `${name}: ${variable}`)
        } else if (value !== undefined) {
          // environment wins over env_file: a value here must be .env's own, interpolated
          assert.match(value, new RegExp(`^\\$\\{${variable}(:[-?][^}]*)?\\}$`), `${name}: ${variable}`)
        }
      }
    }
  })

  it('when a variable only compose reads is used, then .env.example documents it', () => {
    const example = readFileSync(`${ROOT}.env.example`, 'utf8')
    const used = [...`${text}${dev.text}`.matchAll(/(?<!\$)\$\{([A-Z][A-Z0-9_]*)/g)].map((match) => match[1] as string)
    const ownVariables = [...new Set(used)].filter((name) => !known.has(name))
    assert.deepEqual(ownVariables.sort(), [
      'APP_DEV_IMAGE',
      'APP_IMAGE',
      'PUBLISH_ADDRESS',
      'PUBLISH_GRPC_PORT',
      'PUBLISH_NATS_PORT',
      'PUBLISH_PORT',
      'VERIFIER_IMAGE',
      'VERIFIER_TOKEN',
    ])
    for (const name of ownVariables) assert.match(example, new RegExp(`^#? ?${name}=`, 'm'), name)
  })

  it('when a secret is referenced, then it has no default and must come from .env', () => {
    const references = [...`${text}${dev.text}`.matchAll(/\$\{([A-Z][A-Z0-9_]*)([^}]*)\}/g)]
    const secrets = references.filter((match) => SECRETS.includes(match[1] as string))
    assert.ok(secrets.length >= 2)
    for (const match of secrets) {
      assert.match(match[2] as string, /^:\?/, `${match[0]} must be required, not defaulted`)
    }
    assert.match(text, /DB_PASS: \$\{DB_PASS:\?/)
  })

  it('when the app runs, then it is healthy only while /readyz answers on the port it listens on', () => {
    for (const [file, node] of [
      [services, '/nodejs/bin/node'],
      [dev.services, 'node'],
    ] as const) {
      const test = file.app?.healthcheck?.test ?? []
      assert.deepEqual(test.slice(0, 3), ['CMD', node, '-e'], 'no shell in the distroless image: node runs the check')
      assert.match(test[3] as string, /^fetch\('http:\/\/127\.0\.0\.1:8080\/readyz'\)/)
      assert.match(test[3] as string, /process\.exit\(r\.ok\?0:1\)/)
      for (const argument of test) assert.doesNotMatch(argument, /\s/, "podman 4.3's API splits arguments at spaces")
    }
    assert.equal(services.app?.environment?.SERVER_PORT, '8080')
    assert.equal(services.app?.read_only, true)
  })

  it('when the verifier runs, then from its own target, with its own settings only, read-only and without capabilities', () => {
    const verifier = services.verifier
    assert.deepEqual(verifier?.build, { context: '.', target: 'verifier' })
    assert.match(
      readFileSync(`${ROOT}Dockerfile`, 'utf8'),
      /FROM runtime AS verifier\nEXPOSE 8081\nCMD \["dist\/bin\/verifier\.js"\]/,
    )
    assert.equal((verifier as { env_file?: unknown }).env_file, undefined, 'not the app’s .env: no database password')
    assert.equal(verifier?.environment?.VERIFIER_BOOKS_URL, 'http://app:9090')
    assert.equal(verifier?.read_only, true)
    assert.equal(verifier?.ports, undefined, 'probes and metrics stay inside the network')
  })

  it('when ports are published, then on loopback unless PUBLISH_ADDRESS says otherwise', () => {
    const ports = Object.values(services).flatMap((service) => service.ports ?? [])
    assert.ok(ports.length >= 5)
    for (const port of ports) assert.match(port, /^\$\{PUBLISH_ADDRESS:-127\.0\.0\.1\}:/, port)
    assert.equal(services.app?.ports?.length, 2)
    assert.match(services.app?.ports?.[0] ?? '', /^\$\{PUBLISH_ADDRESS:-127\.0\.0\.1\}:\$\{PUBLISH_PORT:-8080\}:8080$/)
  })

  it('when native gRPC is published, then beside HTTP on the port GRPC_PORT makes the app listen on', () => {
    const grpcPort = services.app?.environment?.GRPC_PORT
    assert.equal(grpcPort, '9090')
    assert.notEqual(grpcPort, services.app?.environment?.SERVER_PORT, 'gRPC has a listener of its own')
    assert.match(
      services.app?.ports?.[1] ?? '',
      new RegExp(`^\\$\\{PUBLISH_ADDRESS:-127\\.0\\.0\\.1\\}:\\$\\{PUBLISH_GRPC_PORT:-9090\\}:${grpcPort}$`),
    )
  })

  it('when every profile is up, then no two services publish the same host port by default', () => {
    const hostPort = (binding: string) =>
      binding
        .replace(/^\$\{PUBLISH_ADDRESS:-[^}]*\}:/, '')
        .replace(/^\$\{[A-Z_]+:-(\d+)\}/, '$1')
        .split(':')[0]
    const owners = new Map<string, string>()
    for (const [name, service] of Object.entries(services)) {
      for (const binding of service.ports ?? []) {
        const port = hostPort(binding) as string
        assert.match(port, /^\d+$/, binding)
        assert.equal(owners.get(port), undefined, `${name} and ${owners.get(port)} both publish ${port}`)
        owners.set(port, name)
      }
    }
  })

  it('when started, then the app waits for a successful migration and a healthy NATS, the migration for a healthy database', () => {
    assert.deepEqual(services.app?.depends_on, {
      migrate: { condition: 'service_completed_successfully' },
      nats: { condition: 'service_healthy' },
    })
    assert.deepEqual(services.migrate?.depends_on, { db: { condition: 'service_healthy' } })
    assert.deepEqual(services.nats?.depends_on, { 'nats-volume': { condition: 'service_completed_successfully' } })
    assert.deepEqual(services.migrate?.command, ['dist/bin/migrate.js', 'up'])
  })

  it("when the app publishes its events, then to this file's NATS, healthy only while JetStream is on", () => {
    assert.equal(services.app?.environment?.NATS_URL, 'nats://nats:4222')
    assert.equal(services.migrate?.environment?.NATS_URL, undefined, 'the migration publishes nothing')
    const nats = services.nats as Service
    assert.match(nats.image ?? '', /^docker\.io\/library\/nats:\d+\.\d+\.\d+-alpine$/, 'a shell and wget for the check')
    const conf = readFileSync(`${ROOT}${natsConfMount(nats).source}`, 'utf8')
    assert.deepEqual(nats.command, ['--config', natsConfMount(nats).target])
    const test = nats.healthcheck?.test ?? []
    assert.deepEqual(test.slice(0, 5), ['CMD', 'wget', '-q', '-O', '/dev/null'])
    const url = new URL(test[5] as string)
    assert.equal(url.hostname, '127.0.0.1')
    assert.equal(
      url.port,
      /^\s*http_port:\s*(\d+)/m.exec(conf)?.[1],
      "the monitoring port of the server's configuration",
    )
    assert.equal(`${url.pathname}${url.search}`, '/healthz?js-enabled-only=true')
    for (const argument of test) assert.doesNotMatch(argument, /\s/, "podman 4.3's API splits arguments at spaces")
    assert.equal(/^\s*port:\s*(\d+)/m.exec(conf)?.[1], '4222', 'NATS_URL names the client port')
    assert.equal(nats.ports?.length, 1)
    assert.match(nats.ports?.[0] ?? '', /^\$\{PUBLISH_ADDRESS:-127\.0\.0\.1\}:\$\{PUBLISH_NATS_PORT:-4222\}:4222$/)
  })

  it("when NATS runs, then as the StatefulSet's uid on a read-only root without capabilities, its store on a volume a one-shot hands it", () => {
    const nats = services.nats as Service
    const statefulSet = parse(readFileSync(`${ROOT}deploy/k8s/components/nats/statefulset.yaml`, 'utf8'))
    const { runAsUser, runAsGroup } = statefulSet.spec.template.spec.securityContext
    assert.equal(nats.user, `${runAsUser}:${runAsGroup}`)
    // Dependabot updates compose's images only: the cluster must follow by hand, and this keeps them one version.
    assert.equal(nats.image, statefulSet.spec.template.spec.containers[0].image, "the StatefulSet's image")
    assert.notEqual(runAsUser, 0)
    assert.equal(nats.read_only, true)
    assert.deepEqual(nats.cap_drop, ['ALL'])
    assert.deepEqual(nats.security_opt, ['no-new-privileges:true'])
    assert.equal(natsConfMount(nats).source, 'deploy/k8s/components/nats/nats.conf', "the cluster's configuration")
    const conf = readFileSync(`${ROOT}${natsConfMount(nats).source}`, 'utf8')
    const storeDir = /^\s*store_dir:\s*(\S+)/m.exec(conf)?.[1]
    assert.ok(nats.volumes?.includes(`nats-data:${storeDir}`), `the named volume holds ${storeDir}`)
    const owner = services['nats-volume'] as Service
    assert.equal(owner.image, nats.image, 'one image to pull')
    assert.deepEqual(owner.entrypoint, ['chown', nats.user, storeDir])
    assert.deepEqual(owner.volumes, [`nats-data:${storeDir}`])
    assert.deepEqual(owner.cap_drop, ['ALL'])
    assert.deepEqual(owner.cap_add, ['CHOWN'], 'root, but allowed to chown and nothing else')
    assert.equal(owner.network_mode, 'none')
    assert.equal(owner.read_only, true)
  })

  it('when the dev override is added, then the dev image runs the mounted sources', () => {
    assert.deepEqual(Object.keys(dev.services).sort(), ['app', 'migrate', 'verifier'], 'it adds no service')
    for (const name of ['app', 'migrate', 'verifier']) {
      assert.ok(dev.services[name]?.volumes?.includes('./src:/app/src:ro'), name)
    }
    assert.deepEqual(dev.services.migrate?.command, ['node', 'src/migrate.ts', 'up'])
    assert.ok(existsSync(`${ROOT}src/migrate.ts`))
    assert.deepEqual(dev.services.verifier?.command, ['node', '--watch', 'src/verifier/main.ts'])
    assert.ok(existsSync(`${ROOT}src/verifier/main.ts`))
    assert.match(readFileSync(`${ROOT}Dockerfile`, 'utf8'), /CMD \["node", "--watch", "src\/server\.ts"\]/)
  })

  it('when the observability profile is off, then only the database, migration, NATS, app and verifier run', () => {
    const always = Object.entries(services)
      .filter(([, service]) => service.profiles === undefined)
      .map(([name]) => name)
    assert.deepEqual(always.sort(), ['app', 'db', 'migrate', 'nats', 'nats-volume', 'verifier'])
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
