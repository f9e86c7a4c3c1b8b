// Builds the Fastify application; the server entry point and the tests both start here.
import { createServer, type RequestListener } from 'node:http'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyBaseLogger } from 'fastify'
import { createAdmission } from './admission/admission.ts'
import { createBudgets } from './admission/budgets.ts'
import { trustOf } from './admission/client-address.ts'
import { RPC_CALL } from './admission/operation.ts'
import { createTokenVerifier } from './auth/tokens.ts'
import type { Config } from './config/config.ts'
import type { Database } from './db/database.ts'
import { healthRoutes } from './health/routes.ts'
import { registerAdmission } from './http/pipeline/admission.ts'
import { answerProtocolErrors, refuseWithoutHost } from './http/pipeline/client-errors.ts'
import { limitConnections } from './http/pipeline/connection-limits.ts'
import { registerDrain } from './http/pipeline/drain.ts'
import { clientErrorHandler, frameworkErrors, registerErrorHandling } from './http/pipeline/errors.ts'
import { type LivenessFastPath, livenessFastPath } from './http/pipeline/liveness-fast-path.ts'
import { registerLoadShedding } from './http/pipeline/load-shedding.ts'
import { trackRouteMethods } from './http/pipeline/method-not-allowed.ts'
import { registerOpenApi } from './http/pipeline/openapi.ts'
import { requireDeclaredOperations, routesServing } from './http/pipeline/operations.ts'
import { registerBodyReadTimeout } from './http/pipeline/read-timeout.ts'
import { requestIdFor } from './http/pipeline/request-id.ts'
import { RequestLog } from './http/pipeline/request-log.ts'
import { registerCors, registerSecurityHeaders } from './http/pipeline/security.ts'
import { validatorCompiler } from './http/pipeline/validation.ts'
import type { HttpResource } from './http/toolkit/resource.ts'
import type { Logger } from './logger.ts'
import { registerHttpMetrics, registerHttpTracing } from './observability/http.ts'
import type { Metrics } from './observability/metrics.ts'
import { declaredOperations, type GrpcServer, registerConnect, startGrpcServer } from './rpc/pipeline/doors.ts'
import { healthService } from './rpc/pipeline/health.ts'
import { reflectionService } from './rpc/pipeline/reflection.ts'
import type { RpcResource } from './rpc/toolkit/resource.ts'

/** The API as the OpenAPI document introduces it. */
const API_INFO = {
  title: 'myapp books API',
  description:
    'Books CRUD service: the TypeScript edition of the learning-cloud-native-go myapp API. ' +
    'Errors are RFC 9457 problem details with the `error` / `errors` members the Go service returns. ' +
    'The same operations are served over Connect, gRPC-Web (on this port) and gRPC (on GRPC_PORT) as ' +
    '`books.v1.BookService`, described by `proto/books/v1/books.proto`.',
}
// The operations that belong to no resource: the probes and the metrics.
const PLATFORM_TAGS = [
  { name: 'health', description: 'Liveness and readiness probes' },
  { name: 'observability', description: 'Prometheus metrics' },
]

export interface AppDependencies {
  config: Pick<Config, 'server' | 'docs' | 'metrics' | 'tracing' | 'cors' | 'auth' | 'rateLimit'>
  database: Database
  logger: Logger
  metrics: Metrics
  /** The resources' doors, as the composition root (src/service.ts) built them. */
  http: readonly HttpResource[]
  rpc: readonly RpcResource[]
}

/** The HTTP server and its pipeline, with every resource's routes and RPC services registered on it. */
export async function buildApp({ config, database, logger, metrics, http: resources, rpc: services }: AppDependencies) {
  const { server } = config
  // Set once the drain exists, below; requests only arrive after listen().
  let liveness: LivenessFastPath | undefined
  const app = Fastify({
    // Fastify's own server, with GET /livez answered in front of it (src/health/liveness-fast-path.ts), behind the
    // per-connection limits (src/http/pipeline/connection-limits.ts), and with Node's own refusals as problem answers.
    serverFactory: (handler) => {
      const httpServer = createServer({
        // Node checks request timeouts on this interval (30 s by default), which would blur a short read timeout.
        connectionsCheckingInterval: Math.min(1000, server.readTimeoutMs),
        // Node's answer would be a bare 400: src/http/pipeline/client-errors.ts gives it instead.
        requireHostHeader: false,
      })
      const serve: RequestListener = (request, response) => {
        if (refuseWithoutHost(logger, request, response)) return
        if (liveness?.(request, response) !== true) handler(request, response)
      }
      httpServer.on(
        'request',
        limitConnections(
          httpServer,
          { maxPipelined: server.maxPipelined, writeTimeoutMs: server.writeTimeoutMs },
          serve,
        ),
      )
      answerProtocolErrors(httpServer, logger, serve)
      // What Fastify sets on the server it makes itself.
      httpServer.keepAliveTimeout = server.idleTimeoutMs
      httpServer.requestTimeout = server.readTimeoutMs
      httpServer.setTimeout(server.writeTimeoutMs)
      return httpServer
    },
    loggerInstance: logger as FastifyBaseLogger,
    logController: new RequestLog(),
    genReqId: requestIdFor,
    // request.ip (request log, rate-limit key, idempotency scope), request.protocol and request.host.
    trustProxy: trustOf(server.trustProxy),
    bodyLimit: server.bodyLimit,
    // Requests that arrive while draining are still served; readiness reports the drain instead.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    clientErrorHandler,
    frameworkErrors,
    routerOptions: { ignoreTrailingSlash: true },
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.setValidatorCompiler(validatorCompiler)
  // JSON is the only media type the API accepts.
  app.removeContentTypeParser('text/plain')
  registerErrorHandling(app)
  registerBodyReadTimeout(app, server.readTimeoutMs)

  // What every route is checked against as it is added: its declared operation, the document, the 405 routes.
  requireDeclaredOperations(app)
  await registerOpenApi(app, {
    docs: config.docs.enabled,
    info: API_INFO,
    tags: [...resources.flatMap((resource) => resource.tags), ...PLATFORM_TAGS],
    components: resources.flatMap((resource) => resource.components),
  })
  // With CORS on, OPTIONS belongs to its preflight route.
  const addMethodNotAllowedRoutes = trackRouteMethods(app, { answerOptions: config.cors.origins.length === 0 })

  // The request pipeline, in this order; each stage may answer and end the request, and everything before it has
  // seen the request by then:
  //   1. request id (genReqId, above; echoed here)
  //   2. metrics and tracing: every answer, refused ones included, is counted, timed and in its caller's trace,
  //      and every later stage runs inside the request's span
  //   3. CORS, so that a browser's script can read the refusals below; a preflight is answered here
  //   4. load shedding
  //   5. admission (src/admission/admission.ts, the same step RPC calls take): the caller's token, its request
  //      budget (by subject, or by address), its budget of refused tokens, and the route's declared access
  //      (a request whose connection was reset before its peer's address was known ends here: 499, unsent)
  //   6. parsing and validation (Fastify), then the handler
  // Request-path hooks take a callback rather than return a promise: one promise and microtask less per hook and
  // request, which the benchmark's profile counted.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })
  if (config.tracing.tracesUrl !== undefined) registerHttpTracing(app)
  if (config.metrics.enabled) registerHttpMetrics(app, metrics)
  const drain = registerDrain(app)
  liveness = livenessFastPath({ metrics: config.metrics.enabled ? metrics : undefined, isDraining: drain.isDraining })
  registerSecurityHeaders(app)
  await registerCors(app, config.cors.origins)
  registerLoadShedding(app, server.loadShedEventLoopDelayMs)
  const budgets = await createBudgets(config.rateLimit, logger)
  app.addHook('onClose', budgets.close)
  const admit = createAdmission({
    tokens: config.auth.mode === 'jwt' ? await createTokenVerifier(config.auth) : undefined,
    publicReads: config.auth.mode === 'jwt' && config.auth.publicReads,
    budgets,
  })
  registerAdmission(app, admit)

  await app.register(healthRoutes, { database, isDraining: drain.isDraining, metrics })
  for (const resource of resources) await app.register(resource.routes, { prefix: resource.prefix })

  // The same resources over Protobuf, through the same stages as RPC interceptors (src/rpc/pipeline/).
  // Health follows readiness; reflection describes what is served. Both only on the gRPC port, where the tools
  // that use them (grpcurl, buf curl, Kubernetes' gRPC probes) call.
  const health = healthService(
    services.map(({ service }) => service.typeName),
    async () =>
      !drain.isDraining() &&
      (await database.ping().then(
        () => true,
        () => false,
      )),
  )
  const reflection = reflectionService([...services, health].map(({ service }) => service))
  const rpc = {
    logger,
    metrics: config.metrics.enabled ? metrics : undefined,
    traced: config.tracing.tracesUrl !== undefined,
    admit,
    operations: declaredOperations([...services, health, reflection]),
  }
  // Each call is admitted by the interceptor, with its method's operation; the routes themselves serve RPC_CALL.
  await routesServing(app, RPC_CALL, () => registerConnect(app, services, rpc))
  const { grpcPort } = server
  if (grpcPort !== undefined) {
    let grpc: GrpcServer | undefined
    app.addHook('onListen', async () => {
      grpc = await startGrpcServer({
        host: server.host,
        port: grpcPort,
        resources: [...services, health, reflection],
        pipeline: rpc,
        readMaxBytes: server.bodyLimit,
        trust: trustOf(server.trustProxy),
      })
      logger.info({ port: grpc.port }, 'gRPC listening')
    })
    app.addHook('preClose', async () => grpc?.close())
  }

  await app.after()
  addMethodNotAllowedRoutes()
  return app
}
export type App = Awaited<ReturnType<typeof buildApp>>
