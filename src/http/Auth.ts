/**
 * API key authentication for handlers: the key comes from the `x-api-key`
 * header, `Authorization: Bearer`, or (for beacons, which cannot set
 * headers) a `key` field of the body. Unknown or revoked keys are 401, a key
 * of the wrong scope or an ingest key from a foreign origin is 403.
 */
import { Effect } from "effect"
import { HttpServerRequest } from "effect/http"
import type { ApiKeyScope } from "../services/ApiKeyFormat.ts"
import { type ApiKeyError, ApiKeys, type ResolvedKey } from "../services/ApiKeys.ts"
import { ApiError } from "./ApiError.ts"

const STATUS: Record<ApiKeyError["reason"], number> = {
  missing_key: 401,
  invalid_key: 401,
  revoked_key: 401,
  wrong_scope: 403,
  origin_not_allowed: 403
}

/** Resolves the request's key for `scope`, or fails with the matching 401 or 403. */
export const requireKey = (
  scope: ApiKeyScope,
  bodyKey?: string
): Effect.Effect<ResolvedKey, ApiError, ApiKeys | HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const apiKeys = yield* ApiKeys
    const presented = headerKey(request.headers) ?? bodyKey
    const origin = request.headers["origin"]
    return yield* apiKeys.resolve(presented, scope, origin).pipe(
      Effect.mapError((error) =>
        new ApiError({
          status: STATUS[error.reason],
          code: error.reason,
          ...(STATUS[error.reason] === 401 ? { headers: { "www-authenticate": "Bearer" } } : {})
        })
      )
    )
  })

const headerKey = (headers: Readonly<Record<string, string | undefined>>) => {
  const explicit = headers["x-api-key"]
  if (explicit !== undefined && explicit !== "") return explicit.trim()
  const authorization = headers["authorization"]
  if (authorization !== undefined && /^Bearer\s+/i.test(authorization)) {
    return authorization.replace(/^Bearer\s+/i, "").trim()
  }
  return undefined
}
