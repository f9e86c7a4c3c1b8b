// npm run build: the production build, dist/bin/server.js and dist/bin/migrate.js, bundled by esbuild.
// Node runs the TypeScript sources as they are (type stripping), but loading ~300 separate modules took most of
// a cold start; one bundle per command starts in about half the time and with a smaller heap (the README's
// Performance section has the figures). The bundle keeps the module graph's behaviour: the same code, no
// minification, with source maps for stack traces.
import { rmSync } from 'node:fs'
import { build } from 'esbuild'

// Two levels deep like src/db/, so that paths relative to a module (the migrations folder) hold in both.
const OUT_DIR = 'dist/bin'

rmSync('dist', { recursive: true, force: true })
await build({
  entryPoints: { server: 'src/server.ts', migrate: 'src/migrate.ts' },
  outdir: OUT_DIR,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  sourcemap: 'linked',
  logLevel: 'warning',
  // Packages that read files next to their own modules at run time stay in node_modules: PGlite (WebAssembly
  // and its data bundle) and Swagger UI (the static files of /docs).
  external: ['@electric-sql/pglite', '@fastify/swagger-ui'],
  // Bundled CommonJS packages call require() for Node's built-ins; an ES module has no require of its own.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
})
process.stdout.write(`built ${OUT_DIR}/server.js and ${OUT_DIR}/migrate.js\n`)
