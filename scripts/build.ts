// npm run build: the production build, dist/bin/server.js, dist/bin/migrate.js and dist/bin/verifier.js (the second
// service), bundled by esbuild.
// Node runs the TypeScript sources as they are (type stripping), but loading ~300 separate modules took most of
// a cold start; one bundle per command starts in about half the time and with a smaller heap (the README's
// Performance section has the figures). The bundle keeps the module graph's behaviour: the same code, no
// minification, with source maps for stack traces.
import { cpSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { build } from 'esbuild'

// Two levels deep like src/db/, so that paths relative to a module (the migrations folder) hold in both.
const OUT_DIR = 'dist/bin'
// Packages that read files next to their own modules at run time stay out of the bundle: PGlite (WebAssembly and
// its data bundle) and Swagger UI (the static files of /docs). dist/node_modules gets them and what they need.
const EXTERNAL = ['@electric-sql/pglite', '@fastify/swagger-ui']

rmSync('dist', { recursive: true, force: true })
await build({
  entryPoints: { server: 'src/server.ts', migrate: 'src/migrate.ts', verifier: 'src/verifier/main.ts' },
  outdir: OUT_DIR,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  sourcemap: 'linked',
  logLevel: 'warning',
  external: EXTERNAL,
  // Bundled CommonJS packages call require() for Node's built-ins; an ES module has no require of its own.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
})

// Node resolves dist/bin's imports from dist/node_modules first, so dist/ runs on its own: the image ships it and
// no other node_modules. The versions are the lock file's, resolved as Node resolves nested node_modules.
type LockedPackage = { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> }
const locked: Record<string, LockedPackage> = JSON.parse(readFileSync('package-lock.json', 'utf8')).packages

/** The lock file path that `name`, imported by the package at `from` ('' for the project), resolves to. */
function resolveLocked(from: string, name: string): string | undefined {
  for (let folder = from; ; ) {
    const candidate = folder === '' ? `node_modules/${name}` : `${folder}/node_modules/${name}`
    if (locked[candidate] !== undefined) return candidate
    if (folder === '') return undefined
    const at = folder.lastIndexOf('/node_modules/')
    folder = at === -1 ? '' : folder.slice(0, at)
  }
}

const runtime = new Set<string>()
const pending = EXTERNAL.map((name) => resolveLocked('', name) as string)
for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
  if (runtime.has(path)) continue
  runtime.add(path)
  const { dependencies = {}, optionalDependencies = {} } = locked[path] ?? {}
  for (const name of Object.keys({ ...dependencies, ...optionalDependencies })) {
    const resolved = resolveLocked(path, name)
    if (resolved !== undefined) pending.push(resolved)
  }
}
// Without the packages' source maps and type declarations: nothing reads them at run time.
const runtimeFile = (file: string) => !/\.map$|\.d\.[cm]?ts$/.test(file)
for (const path of [...runtime].sort()) cpSync(path, join('dist', path), { recursive: true, filter: runtimeFile })
process.stdout.write(
  `built ${OUT_DIR}/server.js, migrate.js and verifier.js, with ${runtime.size} packages in dist/node_modules\n`,
)
