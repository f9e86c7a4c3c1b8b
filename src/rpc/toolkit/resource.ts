// What a resource brings to the RPC doors: its service, the implementation, and the operation each method serves.
import type { DescService } from '@bufbuild/protobuf'
import type { ServiceImpl } from '@connectrpc/connect'
import type { Operation } from '../../admission/operation.ts'

export interface RpcResource<S extends DescService = DescService> {
  service: S
  impl: ServiceImpl<S>
  /**
   * Per method (by its local name, e.g. getBook): the operation it serves, as declared once for every door. A method
   * left out is refused at start-up.
   */
  operations: Readonly<Record<string, Operation>>
}
