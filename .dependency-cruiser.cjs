// Architecture rules that `npm run lint` checks, so that the layering docs/architecture.md describes stays true as
// the code grows. Paths are relative to the folder depcruise runs in (the repository root).

// The layers, by what they are.
const LAYERS = {
  // Shared by every resource; none of them names one.
  admission: '^src/admission/',
  auth: '^src/auth/',
  config: '^src/config/',
  db: '^src/db/',
  events: '^src/events/',
  http: '^src/http/',
  jobs: '^src/jobs/',
  observability: '^src/observability/',
  rpc: '^src/rpc/',
  schema: '^src/schema/',
  generated: '^src/gen/',
  logger: '^src/logger[.]ts$',
  // The probes: HTTP routes of the service itself, on the toolkit like a resource's.
  health: '^src/health/',
}
const SHARED = Object.values(LAYERS)
// The services besides the books service (whose composition root and entry point are the app level below): each
// its own deployable, built on the shared layers and calling the books service over its contract (src/gen).
const SERVICES = { verifier: '^src/verifier/' }
// The app level: the contract a resource fulfils, the list of resources, the composition root and the entry points.
const APP = '^src/(app|service|server|cluster|migrate|resource|resources)[.]ts$'
const NPM = '(^|/)node_modules/'
// The service's own manifest (name, version) is no resource either.
const MANIFEST = '^package[.]json$'
// A resource: any other folder of src, e.g. src/books. Its REST adapter (http/), its RPC adapter (rpc/) and its
// assembly (resource.ts) may know the transports; the rest of it is its core.
const RESOURCE = `^src/(?!(${[...Object.keys(LAYERS), ...Object.keys(SERVICES)]
  .filter((name) => name !== 'logger')
  .join('|')}|gen)/)[^/]+/`
const RESOURCE_REST = '^src/[^/]+/http/'
const RESOURCE_RPC = '^src/[^/]+/rpc/'
const RESOURCE_ASSEMBLY = '^src/[^/]+/resource[.]ts$'
const CORE_EXCEPT = [RESOURCE_REST, RESOURCE_RPC, RESOURCE_ASSEMBLY]

/** A rule: `from` may not import `to`. */
const rule = (name, comment, from, to) => ({ name, comment, severity: 'error', from, to })

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    rule(
      'no-circular',
      'An import cycle (type-only imports count too) means two modules are one; split out what both need.',
      {},
      { circular: true },
    ),
    rule(
      'shared-names-no-resource',
      'The shared layers serve every resource and name none: a resource registers with them through src/resource.ts, ' +
        'and the composition root (src/service.ts) wires it in. They may import each other, npm packages and ' +
        'package.json, never a resource folder or the app level.',
      { path: SHARED },
      { pathNot: [...SHARED, NPM, MANIFEST], dependencyTypesNot: ['core'] },
    ),
    rule(
      'events-knows-no-core',
      "The events layer reads any resource's events through its declaration (src/events/cloudevents.ts), never a " +
        "resource's core: the books' types, subjects and stream are the books' own.",
      { path: LAYERS.events },
      { path: RESOURCE },
    ),
    rule(
      'core-records-events-only',
      "A resource's core records its events through the outbox (src/events/outbox.ts) and declares them " +
        '(src/events/cloudevents.ts); the relay, the feed and the jobs that move them are not its business.',
      { path: RESOURCE, pathNot: CORE_EXCEPT },
      { path: LAYERS.events, pathNot: '^src/events/(outbox|cloudevents)[.]ts$' },
    ),
    rule(
      'core-knows-no-transport',
      "A resource's core (everything but its http/, rpc/ and resource.ts) knows no transport: no Fastify, no Connect, " +
        'nothing of src/http or src/rpc.',
      { path: RESOURCE, pathNot: CORE_EXCEPT },
      {
        path: [`${NPM}(fastify|fastify-[^/]+|@fastify/[^/]+|@connectrpc/[^/]+)/`, LAYERS.http, LAYERS.rpc, '^src/gen/'],
      },
    ),
    rule(
      'rest-not-to-rpc',
      'REST and RPC are two doors onto the same core: neither builds on the other. What both need lives below them ' +
        '(src/admission, src/schema, the resource core).',
      { path: [LAYERS.http, RESOURCE_REST] },
      { path: [LAYERS.rpc, RESOURCE_RPC] },
    ),
    rule(
      'rpc-not-to-rest',
      'See rest-not-to-rpc.',
      { path: [LAYERS.rpc, RESOURCE_RPC] },
      { path: [LAYERS.http, RESOURCE_REST] },
    ),
    rule(
      'observability-and-probes-not-to-the-pipeline',
      'Observability and the probes are read by the HTTP pipeline, not the other way round: they may use the HTTP ' +
        "toolkit (a route's declaration, problem answers), never the pipeline's stages.",
      { path: [LAYERS.observability, LAYERS.health] },
      { path: '^src/http/pipeline/' },
    ),
    rule(
      'admission-is-transport-neutral',
      'The admission step is the same for every door: it knows no Fastify, no Connect, nothing of src/http or src/rpc.',
      { path: LAYERS.admission },
      { path: [LAYERS.http, LAYERS.rpc, `${NPM}(fastify|@fastify/(?!proxy-addr/)[^/]+|@connectrpc/[^/]+)/`] },
    ),
    rule(
      'http-uses-db-types-only',
      'src/http may name the Database seam in types and read what a database error means (src/db/errors.ts), but ' +
        'never open or query a database itself.',
      { path: LAYERS.http },
      { path: LAYERS.db, pathNot: '^src/db/errors[.]ts$', dependencyTypesNot: ['type-only'] },
    ),
    rule(
      'resource-uses-the-toolkits',
      "A resource's adapters build on src/http/toolkit and src/rpc/toolkit; the pipelines (src/http/pipeline, " +
        "src/rpc/pipeline) are the app's to wire, in the order src/app.ts states.",
      { path: RESOURCE },
      { path: ['^src/http/pipeline/', '^src/rpc/pipeline/'] },
    ),
    rule(
      'resources-do-not-know-each-other',
      'A resource plugs in whole and can be taken out whole: it imports no other resource.',
      { path: '^src/([^/]+)/', pathNot: SHARED },
      { path: RESOURCE, pathNot: '^src/$1/' },
    ),
    rule(
      'a-service-knows-only-the-shared-layers',
      'A second service (the verifier) shares the layers and the generated contract, and reaches the books service ' +
        'over the network only: no resource, nothing of the books service’s app level.',
      { path: Object.values(SERVICES) },
      { path: [RESOURCE, APP] },
    ),
    rule(
      'no-one-imports-a-service',
      'Nothing of the books service, and no shared layer, depends on another service: each deploys on its own.',
      { path: '^src/', pathNot: Object.values(SERVICES) },
      { path: Object.values(SERVICES) },
    ),
    rule('src-not-to-test', 'The service must run without its test folder.', { path: '^src/' }, { path: '^test/' }),
    rule(
      'bench-not-to-test',
      'The benchmark runs on its own; what it shares with the tests belongs in a module of its own.',
      { path: '^bench/' },
      { path: '^test/' },
    ),
    rule(
      'not-to-unresolvable',
      'An import that cannot be resolved would slip past every rule above.',
      {},
      { couldNotResolve: true },
    ),
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
