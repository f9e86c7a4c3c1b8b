// npm run lint:proto's checks catch what they are there for: a breaking change against the committed baseline,
// a lint rule broken, a file not in buf format. Each is planted in a throwaway copy of the workspace.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, it } from 'node:test'
import { BASELINE, BREAKING_ARGS, BUF, bufEnvironment, ROOT } from '../../../scripts/proto.ts'
import { describe } from '../../helpers/describe.ts'

const BOOKS_PROTO = 'proto/books/v1/books.proto'
const LINT_ARGS = ['lint']
const FORMAT_ARGS = ['format', 'proto', '--diff', '--exit-code']

interface Violation {
  path: string
  type: string
  message: string
}

const copies: string[] = []
after(() => {
  for (const copy of copies) rmSync(copy, { recursive: true, force: true })
})

/** A copy of the buf workspace (with the committed baseline) whose books.proto is `edit` of the committed one. */
function workspaceWith(edit: (proto: string) => string): string {
  const copy = mkdtempSync(join(tmpdir(), 'myapp-proto-'))
  copies.push(copy)
  for (const entry of ['buf.yaml', 'proto', 'third_party'])
    cpSync(join(ROOT, entry), join(copy, entry), { recursive: true })
  const committed = readFileSync(join(ROOT, BOOKS_PROTO), 'utf8')
  const edited = edit(committed)
  writeFileSync(join(copy, BOOKS_PROTO), edited)
  return copy
}

/** Replaces `from` with `to`, failing when `from` is not in the text (a plant that plants nothing proves nothing). */
function replacing(from: string, to: string): (proto: string) => string {
  return (proto) => {
    assert.ok(proto.includes(from), `${BOOKS_PROTO} no longer has ${JSON.stringify(from)}`)
    return proto.replace(from, to)
  }
}

function buf(cwd: string, args: string[]): { status: number | null; violations: Violation[]; output: string } {
  const result = spawnSync(BUF, [...args, '--error-format', 'json'], { cwd, env: bufEnvironment(), encoding: 'utf8' })
  const violations = result.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Violation)
  return { status: result.status, violations, output: result.stdout + result.stderr }
}

describe('buf breaking against the committed baseline', () => {
  it('when npm run lint:proto runs, then it runs these checks', () => {
    const script = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts['lint:proto'] as string
    for (const args of [LINT_ARGS, FORMAT_ARGS, BREAKING_ARGS])
      assert.ok(script.includes(`buf ${args.join(' ')}`), script)
  })

  it('when the contract is as committed, then there is no breaking change', () => {
    const result = buf(
      workspaceWith((proto) => proto),
      BREAKING_ARGS,
    )
    assert.equal(result.status, 0, result.output)
  })

  it('when only comments change, then there is no breaking change', () => {
    const result = buf(workspaceWith(replacing('// One book by id.', '// A book, found by its id.')), BREAKING_ARGS)
    assert.equal(result.status, 0, result.output)
  })

  it('when a field is added, then there is no breaking change', () => {
    const result = buf(
      workspaceWith(replacing('  int32 version = 10;\n', '  int32 version = 10;\n  string isbn = 12;\n')),
      BREAKING_ARGS,
    )
    assert.equal(result.status, 0, result.output)
  })

  const plants = [
    {
      change: 'a field of Book is renumbered',
      edit: replacing('  string author = 3;', '  string author = 12;'),
      type: 'FIELD_NO_DELETE',
      message: /field "3" with name "author" on message "Book" was deleted/,
    },
    {
      change: 'a field of Book is removed',
      edit: replacing('  optional string description = 7;\n', ''),
      type: 'FIELD_NO_DELETE',
      message: /field "7" with name "description" on message "Book" was deleted/,
    },
    {
      change: 'a field changes its type',
      edit: replacing('  int32 version = 10;', '  int64 version = 10;'),
      type: 'FIELD_SAME_TYPE',
      message: /"version" on message "Book" changed type from "int32" to "int64"/,
    },
    {
      change: 'a field is renamed (its JSON name changes with it)',
      edit: replacing('  string page_token = 2;', '  string cursor = 2;'),
      type: 'FIELD_SAME_JSON_NAME',
      message: /"ListBooksRequest" changed option "json_name" from "pageToken" to "cursor"/,
    },
    {
      change: 'an rpc is renamed',
      edit: replacing('rpc DeleteBook(', 'rpc RemoveBook('),
      type: 'RPC_NO_DELETE',
      message: /RPC "DeleteBook" on service "BookService" was deleted/,
    },
    {
      change: 'an enum value is removed',
      edit: replacing('  BOOK_STATUS_VERIFIED = 2;\n', ''),
      type: 'ENUM_VALUE_NO_DELETE',
      message: /enum value "2" on enum "BookStatus" was deleted/,
    },
  ]
  for (const { change, edit, type, message } of plants) {
    it(`when ${change}, then buf breaking fails and names it (${type})`, () => {
      const result = buf(workspaceWith(edit), BREAKING_ARGS)
      assert.equal(result.status, 100, result.output)
      const violation = result.violations.find((found) => found.type === type)
      assert.ok(violation, `no ${type} in:\n${result.output}`)
      assert.equal(violation.path, BOOKS_PROTO)
      assert.match(violation.message, message)
    })
  }
})

describe('buf lint and buf format on the contract', () => {
  it('when the contract is as committed, then it is lint-clean and formatted', () => {
    const copy = workspaceWith((proto) => proto)
    for (const args of [LINT_ARGS, FORMAT_ARGS]) {
      const result = buf(copy, args)
      assert.equal(result.status, 0, `buf ${args.join(' ')}:\n${result.output}`)
    }
  })

  it('when an enum has no UNSPECIFIED zero value, then buf lint fails and names the rule', () => {
    const result = buf(
      workspaceWith((proto) => `${proto}\n// Where a book stands.\nenum Shelf {\n  SHELF_TOP = 0;\n}\n`),
      LINT_ARGS,
    )
    assert.equal(result.status, 100, result.output)
    const violation = result.violations.find((found) => found.type === 'ENUM_ZERO_VALUE_SUFFIX')
    assert.ok(violation, `no ENUM_ZERO_VALUE_SUFFIX in:\n${result.output}`)
    assert.equal(violation.path, BOOKS_PROTO)
    assert.match(violation.message, /"SHELF_TOP" should be suffixed with "_UNSPECIFIED"/)
  })

  it('when a line is not as buf format writes it, then buf format --exit-code fails with the diff', () => {
    const result = buf(workspaceWith(replacing('  string title = 2;', '  string   title=2;')), FORMAT_ARGS)
    assert.notEqual(result.status, 0, result.output)
    assert.match(result.output, /^-\s+string {3}title=2;$/m)
    assert.match(result.output, /^\+\s+string title = 2;$/m)
  })
})

describe('the committed baseline', () => {
  it('when read, then it holds the books contract with its imports, so that buf needs nothing else', () => {
    const result = spawnSync(BUF, ['ls-files', BASELINE, '--include-imports'], { cwd: ROOT, encoding: 'utf8' })
    assert.equal(result.status, 0, result.stderr)
    assert.deepEqual(result.stdout.trim().split('\n').sort(), [
      'books/v1/books.proto',
      'google/protobuf/timestamp.proto',
    ])
  })
})
