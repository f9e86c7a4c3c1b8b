// What a resource brings to the RPC doors: its service, the implementation, and each method's access.
import type { DescService } from '@bufbuild/protobuf'
import type { ServiceImpl } from '@connectrpc/connect'
import type { Access } from '../../auth/access.ts'

export interface RpcResource<S extends DescService = DescService> {
  service: S
  impl: ServiceImpl<S>
  /** Per method (by its local name, e.g. getBook): who may call it. A method left out is refused at start-up. */
  access: Readonly<Record<string, Access>>
}
