// grpc.health.v1.Health: SERVING while the service is ready (the same check as /readyz), NOT_SERVING otherwise.
// The service name "" is the server as a whole; every served service answers the same.
import { create } from '@bufbuild/protobuf'
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect'
import { declareOperations } from '../../admission/operation.ts'
import { PUBLIC } from '../../auth/access.ts'
import {
  Health,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
} from '../../gen/grpc/health/v1/health_pb.js'
import type { RpcResource } from '../toolkit/resource.ts'

// A probe, like GET /readyz: open, and neither counted in a budget nor shed.
const { healthCheck } = declareOperations({
  healthCheck: { summary: 'gRPC health', access: PUBLIC, effect: 'read', limit: 'probe' },
})

/** How often Watch looks again while the status does not change. */
const WATCH_INTERVAL_MS = 1000

export function healthService(services: readonly string[], isReady: () => Promise<boolean>): RpcResource {
  const known = new Set(['', ...services])
  const statusOf = async (service: string) => {
    if (!known.has(service)) throw new ConnectError(`unknown service ${service}`, Code.NotFound)
    return (await isReady()) ? HealthCheckResponse_ServingStatus.SERVING : HealthCheckResponse_ServingStatus.NOT_SERVING
  }
  const impl: ServiceImpl<typeof Health> = {
    async check(request) {
      return create(HealthCheckResponseSchema, { status: await statusOf(request.service) })
    },
    async *watch(request, context) {
      if (!known.has(request.service)) {
        yield create(HealthCheckResponseSchema, { status: HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN })
        return
      }
      let last: HealthCheckResponse_ServingStatus | undefined
      while (!context.signal.aborted) {
        const status = await statusOf(request.service)
        if (status !== last) yield create(HealthCheckResponseSchema, { status })
        last = status
        await new Promise((resolve) => setTimeout(resolve, WATCH_INTERVAL_MS).unref())
      }
    },
    async list() {
      const status = await statusOf('')
      return { statuses: Object.fromEntries([...known].filter(Boolean).map((name) => [name, { status }])) }
    },
  }
  return { service: Health, impl, operations: { check: healthCheck, watch: healthCheck, list: healthCheck } }
}
