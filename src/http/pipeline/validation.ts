// Request validation in Fastify: the compiler every route's schemas go through (src/schema/validation.ts).
import type { FastifySchemaCompiler } from 'fastify'
import type { TSchema } from 'typebox'
import { compileValidator } from '../../schema/validation.ts'

export { fieldErrors } from '../../schema/validation.ts'

export const validatorCompiler: FastifySchemaCompiler<TSchema> = compileValidator
