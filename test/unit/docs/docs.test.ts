// The README and docs/ stay true to the repository: the configuration reference is the one the schemas generate,
// every link and every repository path they name exists, and the README stays one screen without run logs.
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import { it } from 'node:test'
import { CONFIGURATION_PAGE, configReference } from '../../../scripts/config-reference.ts'
import { EnvSchema } from '../../../src/config/config.ts'
import { describe } from '../../helpers/describe.ts'

const ROOT = new URL('../../../', import.meta.url).pathname
const PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
]
const text = (page: string) => readFileSync(join(ROOT, page), 'utf8')

/** Markdown links [text](target) outside code blocks, without their #fragment. */
function linksOf(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, '')
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map(([, target]) => (target as string).split('#')[0] as string)
}

describe('the configuration reference', () => {
  it('when the config schemas change, then docs/configuration.md must be regenerated (npm run config-reference)', () => {
    assert.ok(
      readFileSync(CONFIGURATION_PAGE, 'utf8').includes(configReference()),
      'docs/configuration.md is stale: run npm run config-reference',
    )
  })

  it('when generated, then it lists every variable the service reads, once', () => {
    const reference = configReference()
    for (const name of Object.keys(EnvSchema.properties)) {
      assert.equal(reference.split(`| \`${name}\` |`).length - 1, 1, name)
    }
  })
})

describe('the README and docs/', () => {
  it('when the README is read, then it is one screen: at most 200 lines', () => {
    const lines = text('README.md').split('\n').length
    assert.ok(lines <= 200, `README.md has ${lines} lines`)
  })

  it('when a page links to a file of the repository, then the file exists', () => {
    for (const page of PAGES) {
      for (const target of linksOf(text(page))) {
        if (target === '' || /^[a-z]+:/.test(target)) continue
        assert.ok(existsSync(normalize(join(ROOT, dirname(page), target))), `${page} links to ${target}`)
      }
    }
  })

  it('when a page names a path of the repository, then the path exists', () => {
    for (const page of PAGES) {
      for (const [, path] of text(page).matchAll(
        /`((?:src|test|scripts|bench|deploy|migrations|proto|docs)\/[A-Za-z0-9_./-]*)`/g,
      )) {
        if ((path as string).includes('*')) continue
        assert.ok(existsSync(join(ROOT, path as string)), `${page} names ${path}`)
      }
    }
  })

  it('when the docs are read, then they hold no dated run and no path outside the repository', () => {
    for (const page of PAGES) {
      const body = text(page)
      assert.doesNotMatch(body, /\.\.\/shared\//, `${page} names a path outside the repository`)
      assert.doesNotMatch(body, /\brun of 20\d\d-\d\d-\d\d/, `${page} holds a dated run`)
    }
  })

  it('when the README indexes docs/, then every page is linked from it', () => {
    const links = new Set(linksOf(text('README.md')).map((target) => normalize(target)))
    for (const page of PAGES.filter((page) => page !== 'README.md')) {
      assert.ok(links.has(page), `README.md does not link ${page}`)
    }
  })
})
