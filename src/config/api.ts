// What the API offers its callers beyond the routes themselves: browser origins, required If-Match, the reference page.
import { type Static, Type } from 'typebox'
import { Flag, Matching } from './variables.ts'

export const ApiEnvSchema = Type.Object({
  CORS_ALLOWED_ORIGINS: Matching(
    '^(https?://[^,\\s/]+)?(,https?://[^,\\s/]+)*$',
    'must be comma-separated origins such as https://app.example.com',
    {
      default: '',
      description: 'Comma-separated origins allowed to call the API from a browser (none by default)',
    },
  ),
  REQUIRE_IF_MATCH: Flag(
    'PUT, PATCH and DELETE without If-Match answer 428 (RPC: without expected_version), so no update is lost',
  ),
  DOCS_ENABLED: Type.Boolean({
    default: true,
    description: 'Serve the API reference page at /docs (turn it off in production)',
  }),
})
export type ApiEnv = Static<typeof ApiEnvSchema>

export function apiConfig(env: ApiEnv) {
  return {
    docs: { enabled: env.DOCS_ENABLED },
    writes: { requireIfMatch: env.REQUIRE_IF_MATCH },
    cors: { origins: env.CORS_ALLOWED_ORIGINS.split(',').filter((origin) => origin !== '') },
  }
}
