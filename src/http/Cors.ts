/**
 * CORS for the browser-facing endpoints. A preflight carries no API key, so
 * it succeeds for any origin that some property allows. The request that
 * follows is checked against its own key's property.
 */
import { Effect } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { SqlClient } from "effect/sql/SqlClient"
import { ApiError } from "./ApiError.ts"

const PREFLIGHT_MAX_AGE_SECONDS = 86_400

/** Headers that let the browser read a response for `origin`. */
export const corsHeaders = (origin: string | undefined): Record<string, string> =>
  origin === undefined ? {} : { "access-control-allow-origin": origin, vary: "Origin, Accept-Language" }

/** Handles `OPTIONS` preflights for origins that a property allows. */
export const preflight = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const origin = request.headers["origin"]
  if (origin === undefined) return HttpServerResponse.empty({ status: 204 })
  const sql = yield* SqlClient
  const rows = yield* sql<{ allowed: boolean }>`SELECT porchlight_origin_allowed(${origin}) AS allowed`.pipe(Effect.orDie)
  if (rows[0]?.allowed !== true) {
    return yield* new ApiError({ status: 403, code: "origin_not_allowed" })
  }
  return HttpServerResponse.empty({
    status: 204,
    headers: {
      ...corsHeaders(origin),
      "access-control-allow-methods": "POST, OPTIONS",
      "access-control-allow-headers": "content-type, x-api-key",
      "access-control-max-age": String(PREFLIGHT_MAX_AGE_SECONDS)
    }
  })
})
