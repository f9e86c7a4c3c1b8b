// The code protoc-gen-es makes of the contract is committed in src/gen/ and must be what buf generate makes now.
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { after, before, it } from 'node:test'
import { generate, ROOT } from '../../../scripts/proto.ts'
import { describe } from '../../helpers/describe.ts'

const COMMITTED = join(ROOT, 'src/gen')

function filesUnder(folder: string): string[] {
  return readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(folder, join(entry.parentPath, entry.name)))
    .sort()
}

describe('the generated Protobuf code', () => {
  let outputBase: string
  let fresh: string
  before(() => {
    outputBase = mkdtempSync(join(tmpdir(), 'myapp-proto-gen-'))
    generate(outputBase)
    fresh = join(outputBase, 'src/gen')
  })
  after(() => rmSync(outputBase, { recursive: true, force: true }))

  it('when proto/ changes, then the committed src/gen/ must be regenerated (npm run proto)', () => {
    const files = filesUnder(fresh)
    assert.ok(files.includes('books/v1/books_pb.js') && files.includes('books/v1/books_pb.d.ts'), `made ${files}`)
    assert.deepEqual(filesUnder(COMMITTED), files, 'src/gen has other files than buf generate makes: run npm run proto')
    for (const file of files) {
      assert.ok(
        readFileSync(join(COMMITTED, file)).equals(readFileSync(join(fresh, file))),
        `src/gen/${file} is stale: run npm run proto`,
      )
    }
  })
})
