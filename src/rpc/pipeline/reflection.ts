// grpc.reflection.v1.ServerReflection, so that grpcurl, buf curl and the like can call the service without the
// .proto files: the descriptors of the served files, from the generated code, and of the error details' files,
// so that the tools decode the details of a failed call too.
import { create, type DescFile, type DescService, toBinary } from '@bufbuild/protobuf'
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt'
import type { ServiceImpl } from '@connectrpc/connect'
import { declareOperations } from '../../admission/operation.ts'
import { PUBLIC } from '../../auth/access.ts'
import {
  ServerReflection,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
} from '../../gen/grpc/reflection/v1/reflection_pb.js'
import type { RpcResource } from '../toolkit/resource.ts'
import { ERROR_DETAILS } from './errors.ts'

// Describes what anyone may see in the proto files; counted like any other call.
const { reflect } = declareOperations({
  reflect: { summary: 'gRPC server reflection', access: PUBLIC, effect: 'read' },
})

/** The file and every file it imports, each once, dependencies first. */
function withDependencies(file: DescFile, seen = new Set<string>()): DescFile[] {
  if (seen.has(file.proto.name)) return []
  seen.add(file.proto.name)
  return [...file.dependencies.flatMap((dependency) => withDependencies(dependency, seen)), file]
}

export function reflectionService(services: readonly DescService[]): RpcResource {
  const all = [...services, ServerReflection]
  const files = new Map<string, DescFile>()
  const symbols = new Map<string, DescFile>()
  for (const described of [...all, ...ERROR_DETAILS]) {
    for (const file of withDependencies(described.file)) {
      files.set(file.proto.name, file)
      for (const message of file.messages) symbols.set(message.typeName, file)
      for (const enumeration of file.enums) symbols.set(enumeration.typeName, file)
      for (const declared of file.services) {
        symbols.set(declared.typeName, file)
        for (const method of declared.methods) symbols.set(`${declared.typeName}.${method.name}`, file)
      }
    }
  }
  const descriptors = (file: DescFile | undefined) =>
    file === undefined
      ? undefined
      : withDependencies(file).map((each) => toBinary(FileDescriptorProtoSchema, each.proto))

  const answer = (request: ServerReflectionRequest): ServerReflectionResponse => {
    const base = { validHost: request.host, originalRequest: request }
    const notFound = (message: string) =>
      create(ServerReflectionResponseSchema, {
        ...base,
        messageResponse: { case: 'errorResponse', value: { errorCode: 5, errorMessage: message } },
      })
    const found = (file: DescFile | undefined, what: string) => {
      const bytes = descriptors(file)
      if (bytes === undefined) return notFound(`${what} not found`)
      return create(ServerReflectionResponseSchema, {
        ...base,
        messageResponse: { case: 'fileDescriptorResponse', value: { fileDescriptorProto: bytes } },
      })
    }
    switch (request.messageRequest.case) {
      case 'listServices':
        return create(ServerReflectionResponseSchema, {
          ...base,
          messageResponse: {
            case: 'listServicesResponse',
            value: { service: all.map((service) => ({ name: service.typeName })) },
          },
        })
      case 'fileByFilename':
        return found(files.get(request.messageRequest.value), request.messageRequest.value)
      case 'fileContainingSymbol':
        return found(symbols.get(request.messageRequest.value), request.messageRequest.value)
      default:
        return create(ServerReflectionResponseSchema, {
          ...base,
          messageResponse: { case: 'errorResponse', value: { errorCode: 12, errorMessage: 'not implemented' } },
        })
    }
  }

  const impl: ServiceImpl<typeof ServerReflection> = {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) yield answer(request)
    },
  }
  return { service: ServerReflection, impl, operations: { serverReflectionInfo: reflect } }
}
