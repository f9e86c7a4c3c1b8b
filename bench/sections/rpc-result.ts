// The rpc section's runs, by key, as bench/sections/rpc.ts fills them and bench/report.ts reports them.
import type { HttpResult } from '../load.ts'

/** Every run's label in the report, in the order of its table. */
export const RPC_RUNS = {
  restRandom: 'REST GET /v1/books/{id}, random ids',
  restOneId: 'REST GET /v1/books/{id}, the one id',
  restOneIdH2load: 'REST GET /v1/books/{id}, the one id',
  grpc: 'gRPC GetBook (GRPC_PORT, HTTP/2)',
  grpcMultiplexed: 'gRPC GetBook, the calls multiplexed on one connection',
  connectBinary: 'Connect binary GetBook (HTTP port, HTTP/1.1)',
} as const
export type RpcRunName = keyof typeof RPC_RUNS

export interface RpcRun extends HttpResult {
  /** The load generator, as the report names it. */
  tool: string
  /** GetBook calls the service counted in the run and its warm-up, by status code (the RPC runs). */
  calls?: Record<string, number>
}

export interface RpcResult {
  /** The one seeded book every run but the random-id read asks for. */
  bookId: string
  runs: Record<RpcRunName, RpcRun>
}

/** GetBook calls the service answered with anything but OK. */
export const notOk = (run: RpcRun | undefined) =>
  Object.entries(run?.calls ?? {}).reduce((sum, [code, count]) => (code === 'OK' ? sum : sum + count), 0)
