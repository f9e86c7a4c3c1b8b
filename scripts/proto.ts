// npm run proto: regenerates src/gen/ from the Protobuf contract (buf generate with buf.gen.yaml).
// `npm run proto -- --baseline` also rewrites proto/baseline.binpb, the contract buf breaking checks against.
//
// The baseline is a buf image (the compiled descriptors of the proto module) committed in the repository, because
// buf breaking needs something to compare with and the alternatives are not here: there is no Buf Schema Registry
// module to use with --against-registry, and `--against .git#branch=main` needs the git history, which a shallow CI
// clone or a container build does not have. The image is built without source info, so that a comment-only edit
// leaves it as it is, and with its imports, so that buf can read it without fetching anything.
// Refresh it when a change to the contract is merged: from then on, what was added is protected too. Running it
// prints any breaking change the refresh accepts; for a published package such as books.v1 there should be none,
// because a breaking change means a new package (books.v2) beside the old one.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { delimiter, join } from 'node:path'

export const ROOT = new URL('..', import.meta.url).pathname
export const BUF = join(ROOT, 'node_modules/.bin/buf')
/** Relative to ROOT, as package.json's lint:proto names it. */
export const BASELINE = 'proto/baseline.binpb'
/** The arguments of the breaking check npm run lint:proto runs; the proto module alone, as the baseline holds. */
export const BREAKING_ARGS = ['breaking', 'proto', '--against', BASELINE]

/**
 * The environment buf runs in: node_modules/.bin first on PATH, so that protoc-gen-es (a `#!/usr/bin/env node`
 * script) runs on the project's Node.js 24 even when this is started outside npm, which would find the machine's.
 */
export function bufEnvironment(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}${delimiter}${process.env.PATH ?? ''}` }
}

/** Generates the code of buf.gen.yaml under `outputBase` (its `out` folders are relative to it). */
export function generate(outputBase: string = ROOT): void {
  execFileSync(BUF, ['generate', '--output', outputBase], { cwd: ROOT, env: bufEnvironment(), stdio: 'inherit' })
}

/** Rewrites the baseline from the proto module as it is now. */
export function writeBaseline(): void {
  execFileSync(BUF, ['build', 'proto', '--exclude-source-info', '--output', BASELINE], {
    cwd: ROOT,
    env: bufEnvironment(),
    stdio: 'inherit',
  })
}

if (import.meta.main) {
  generate()
  console.log(`wrote ${join(ROOT, 'src/gen')}`)
  if (process.argv.includes('--baseline')) {
    const check = existsSync(join(ROOT, BASELINE))
      ? spawnSync(BUF, BREAKING_ARGS, { cwd: ROOT, env: bufEnvironment(), encoding: 'utf8' })
      : { status: 0, stdout: '', stderr: '' }
    if (check.status !== 0) {
      console.log(`the new baseline accepts these breaking changes:\n${check.stdout}${check.stderr}`)
    }
    writeBaseline()
    console.log(`wrote ${join(ROOT, BASELINE)}`)
  }
}
