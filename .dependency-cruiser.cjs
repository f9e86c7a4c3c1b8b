// Architecture rules that `npm run lint` checks, so the layering in STYLE.md stays true as the code grows.
// Paths are relative to the folder depcruise runs in (the repository root).

// The shared layers every part of src may build on; resource folders (src/books, src/health, …) are everything else.
const SHARED = [
  '^src/admission/',
  '^src/http/',
  '^src/db/',
  '^src/config/',
  '^src/observability/',
  '^src/schema/',
  '^src/auth/',
  '^src/rpc/',
  '^src/gen/',
  '^src/logger[.]ts$',
]
const NPM = '(^|/)node_modules/'
// The service's own manifest (name, version) is no resource either.
const MANIFEST = '^package[.]json$'
// A resource's transport adapter: the only part of it that may know Fastify and src/http.
const ADAPTER = '^src/[^/]+/(routes[.]ts$|http/|rpc/)'
// src/health is the pipeline's probes, all HTTP: it has no core to keep apart.
const RESOURCE = '^src/(?!(admission|http|db|config|observability|schema|auth|rpc|gen|health)/)[^/]+/'

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle (type-only imports count too) means two modules are one; split out what both need.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'http-knows-no-resource',
      comment:
        'src/http is shared by every resource: it may import only src/http, src/config, src/logger.ts, ' +
        'src/observability, src/schema, src/db (types), package.json, node builtins and npm packages. ' +
        'A resource registers with it, never the reverse.',
      severity: 'error',
      from: { path: '^src/http/' },
      to: { pathNot: [...SHARED, NPM, MANIFEST], dependencyTypesNot: ['core'] },
    },
    {
      name: 'http-uses-db-types-only',
      comment:
        'src/http may name the Database seam in types and read what a database error means (src/db/errors.ts), ' +
        'but never open or query a database itself.',
      severity: 'error',
      from: { path: '^src/http/' },
      to: { path: '^src/db/', pathNot: '^src/db/errors[.]ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'db-not-to-http',
      comment: 'The data-access seam knows no transport.',
      severity: 'error',
      from: { path: '^src/db/' },
      to: { path: '^src/http/' },
    },
    {
      name: 'db-knows-no-resource',
      comment:
        'src/db is shared by every resource: it may import only src/db, src/config, src/logger.ts, ' +
        'src/observability, src/schema, package.json, node builtins and npm packages (src/http is the rule above). ' +
        'Resource SQL lives in the resource folder.',
      severity: 'error',
      from: { path: '^src/db/' },
      to: { pathNot: [...SHARED, NPM, MANIFEST], dependencyTypesNot: ['core'] },
    },
    {
      name: 'core-not-to-fastify',
      comment:
        "A resource's core (everything but its adapter, routes.ts or http/) knows no transport: " +
        'no Fastify, no @fastify/* plugin or type provider, nothing of src/http.',
      severity: 'error',
      from: { path: RESOURCE, pathNot: ADAPTER },
      to: { path: [`${NPM}(fastify|fastify-[^/]+|@fastify/[^/]+)/`, '^src/http/'] },
    },
    {
      name: 'resource-uses-the-toolkit',
      comment:
        "A resource's adapters build on src/http/toolkit and src/rpc/toolkit; the pipelines (src/http/pipeline, " +
        "src/rpc/pipeline) are the app's to wire, in the order src/app.ts states.",
      severity: 'error',
      from: { path: RESOURCE },
      to: { path: ['^src/http/pipeline/', '^src/rpc/pipeline/'] },
    },
    {
      name: 'src-not-to-test',
      comment: 'The service must run without its test folder.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^test/' },
    },
    {
      name: 'bench-not-to-test',
      comment: 'The benchmark runs on its own; what it shares with the tests belongs in a module of its own.',
      severity: 'error',
      from: { path: '^bench/' },
      to: { path: '^test/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that cannot be resolved would slip past every rule above.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // Type-only imports are dependencies too: a cycle or a layer crossing in types is still one.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'types', 'default'],
      mainFields: ['module', 'main', 'types', 'typings'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.d.ts', '.json'],
    },
  },
}
