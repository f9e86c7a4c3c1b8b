// npm run sbom: a CycloneDX SBOM (cyclonedx-npm) of the production dependencies, at their locked versions.
// (npm's own `npm sbom --omit dev` was tried first: it left out ajv, a direct production dependency.)
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { it } from 'node:test'
import { promisify } from 'node:util'
import { describe } from '../../helpers/describe.ts'

const run = promisify(execFile)
const ROOT = new URL('../../../', import.meta.url).pathname

describe('the SBOM', () => {
  it('when npm run sbom runs, then it lists every production dependency at its locked version and no dev tool', async () => {
    await run('npm', ['run', '--silent', 'sbom'], { cwd: ROOT, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 })
    const bom = JSON.parse(readFileSync(`${ROOT}sbom.cdx.json`, 'utf8')) as {
      bomFormat: string
      specVersion: string
      components: { group?: string; name: string; version: string; purl: string }[]
    }
    assert.equal(bom.bomFormat, 'CycloneDX')
    const lock = JSON.parse(readFileSync(`${ROOT}package-lock.json`, 'utf8')) as {
      packages: Record<string, { version?: string }>
    }
    const declared = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as {
      dependencies: Record<string, string>
      devDependencies: Record<string, string>
    }
    // A package may appear at several versions (nested copies); the top-level one must be among them.
    const versions = new Map<string, Set<string>>()
    for (const component of bom.components) {
      const name = component.group ? `${component.group}/${component.name}` : component.name
      versions.set(name, (versions.get(name) ?? new Set()).add(component.version))
    }
    for (const name of Object.keys(declared.dependencies)) {
      const locked = lock.packages[`node_modules/${name}`]?.version as string
      assert.ok(versions.get(name)?.has(locked), `${name}@${locked} in the SBOM`)
    }
    // Dev tools stay out (some dev dependencies, such as @types/node, are also needed by production packages).
    for (const name of [
      'typescript',
      '@biomejs/biome',
      '@redocly/cli',
      'playwright-core',
      'fast-check',
      'pino-pretty',
    ]) {
      assert.ok(name in declared.devDependencies)
      assert.equal(versions.has(name), false, `${name} is a dev tool`)
    }
  })
})
