// deploy/monitoring: the alert rules pass promtool's checks and unit tests (each alert with a case where it fires
// and one where it stays quiet), load into a real Prometheus, and the Grafana dashboard's queries parse there and
// name only metrics the service exports.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { after, before, it } from 'node:test'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { createLogger } from '../../../src/logger.ts'
import { parseVerifierConfig } from '../../../src/verifier/config.ts'
import { createVerifierService } from '../../../src/verifier/service.ts'
import { describe } from '../../helpers/describe.ts'
import { startService, type TestService } from '../../helpers/service.ts'
import { PROMETHEUS, PROMTOOL, programMissing, type RunningPrometheus, startPrometheus } from '../../helpers/tools.ts'

const run = promisify(execFile)
const FOLDER = new URL('../../../deploy/monitoring/', import.meta.url).pathname
const RULES = `${FOLDER}prometheus-rules.yaml`
const dashboard = JSON.parse(readFileSync(`${FOLDER}grafana-dashboard.json`, 'utf8')) as {
  uid: string
  panels: { id: number; type: string; targets?: { expr: string }[] }[]
}
const rules = parse(readFileSync(RULES, 'utf8')) as {
  groups: { rules: { record?: string; alert?: string; expr: string }[] }[]
}
const ruleTests = parse(readFileSync(`${FOLDER}prometheus-rules.test.yaml`, 'utf8')) as {
  tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[]
}

const dashboardExpressions = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr))
const ruleExpressions = rules.groups.flatMap((group) => group.rules.map((rule) => rule.expr))
const recorded = new Set(rules.groups.flatMap((group) => group.rules.flatMap((rule) => rule.record ?? [])))

/** Grafana's variables replaced by values Prometheus accepts. */
const withVariables = (expr: string) =>
  expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__range', '1h')
    .replaceAll('$job', 'myapp')
    .replaceAll('$instance', '.*')

describe('the alert rules', { skip: programMissing(PROMTOOL, 'apt-get install prometheus') }, () => {
  it('when promtool checks them, then every rule is valid', async () => {
    const { stdout } = await run(PROMTOOL, ['check', 'rules', RULES])
    assert.match(stdout, /SUCCESS: 20 rules found/)
  })

  it('when the unit tests are read, then every alert has a case where it fires and one where it stays quiet', () => {
    const cases = ruleTests.tests.flatMap((test) => test.alert_rule_test ?? [])
    const alerts = rules.groups.flatMap((group) => group.rules.flatMap((rule) => rule.alert ?? []))
    assert.ok(alerts.includes('MyappEventsRelayStalled'))
    for (const alert of alerts) {
      const mine = cases.filter((candidate) => candidate.alertname === alert)
      assert.ok(
        mine.some((candidate) => candidate.exp_alerts.length > 0),
        `${alert} fires in some case`,
      )
      assert.ok(
        mine.some((candidate) => candidate.exp_alerts.length === 0),
        `${alert} stays quiet in some case`,
      )
    }
  })

  it('when promtool runs their unit tests, then each alert fires and stays quiet as specified', async () => {
    const { stdout } = await run(PROMTOOL, ['test', 'rules', 'prometheus-rules.test.yaml'], { cwd: FOLDER })
    assert.match(stdout, /SUCCESS/)
  })
})

describe('the dashboard', () => {
  it('when read, then it is a Grafana dashboard with unique panel ids and a query on every graph', () => {
    assert.equal(dashboard.uid, 'myapp-overview')
    const ids = dashboard.panels.map((panel) => panel.id)
    assert.equal(new Set(ids).size, ids.length)
    for (const panel of dashboard.panels.filter((candidate) => candidate.type !== 'row')) {
      assert.ok((panel.targets ?? []).length > 0, `panel ${panel.id} has a query`)
    }
  })
})

describe('rules and dashboard against the live service', {
  skip: programMissing(PROMETHEUS, 'apt-get install prometheus'),
}, () => {
  let service: TestService
  let prometheus: RunningPrometheus
  let exported: Set<string>
  before(async () => {
    service = await startService('embedded')
    await service.fetch('/v1/books')
    const text = await (await service.fetch('/metrics')).text()
    // And the verifier's, which its rules name.
    const verifier = createVerifierService({
      config: parseVerifierConfig({ VERIFIER_BOOKS_URL: service.baseUrl, VERIFIER_FEED_POSITION_FILE: '/dev/null' }),
      logger: createLogger('silent'),
    })
    const verifierText = await verifier.registry.metrics()
    exported = new Set([...`${text}${verifierText}`.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1] as string))
    prometheus = await startPrometheus([new URL(service.baseUrl).host], [RULES])
  })
  after(async () => {
    prometheus?.stop()
    await service?.close()
  })

  it('when every query names metrics, then each is exported by the service or recorded by the rules', () => {
    for (const expr of [...dashboardExpressions, ...ruleExpressions]) {
      const withoutLabelValues = expr.replace(/"[^"]*"/g, '""')
      for (const [name] of withoutLabelValues.matchAll(
        /\b(?:http|db|events|nodejs|process|myapp|verifier)[a-z0-9_:]*/g,
      )) {
        const base = name.replace(/_(bucket|count|sum)$/, '')
        assert.ok(exported.has(name) || exported.has(base) || recorded.has(name), `${name} in: ${expr}`)
      }
    }
  })

  it('when Prometheus evaluates every dashboard query, then none is rejected', async () => {
    for (const expr of dashboardExpressions) await prometheus.query(withVariables(expr))
  })

  it('when Prometheus loads the rules, then every group is there with its rules', async () => {
    let groups: { name: string; rules: { name: string }[] }[] = []
    for (let attempt = 0; attempt < 50 && groups.length < 3; attempt++) {
      const response = await fetch(`${prometheus.api}/api/v1/rules`)
      groups = ((await response.json()) as { data: { groups: typeof groups } }).data.groups
      if (groups.length < 3) await new Promise((resolve) => setTimeout(resolve, 200))
    }
    assert.deepEqual(groups.map((group) => [group.name, group.rules.length]).sort(), [
      ['myapp-alerts', 7],
      ['myapp-events', 2],
      ['myapp-slo-recording', 8],
      ['myapp-verifier', 3],
    ])
  })
})
