/**
 * `GET /v1/healthz`: 200 `{"status":"ok"}` when the database runs a query
 * within two seconds, 503 otherwise. A change of state is logged once, not
 * every probe.
 */
import { Effect, Fiber, Ref } from "effect"
import { HttpServerResponse } from "effect/http"
import { SqlClient } from "effect/sql/SqlClient"
import { ApiError } from "./ApiError.ts"

const PROBE_TIMEOUT = "2 seconds"

export const makeHealthHandler = Effect.gen(function*() {
  const sql = yield* SqlClient
  const lastHealthy = yield* Ref.make(true)

  return Effect.gen(function*() {
    // The probe runs detached, so the timeout fires on time even while a
    // stuck connection attempt cannot be interrupted.
    const probe = yield* Effect.forkDetach(sql`SELECT 1`)
    const healthy = yield* Fiber.join(probe).pipe(
      Effect.timeout(PROBE_TIMEOUT),
      Effect.as(true),
      Effect.catchCause(() => Effect.succeed(false))
    )
    const previous = yield* Ref.getAndSet(lastHealthy, healthy)
    if (previous && !healthy) yield* Effect.logWarning("database stopped answering health probes")
    if (!previous && healthy) yield* Effect.logInfo("database answers health probes again")
    if (!healthy) {
      return yield* new ApiError({ status: 503, code: "database_unavailable", headers: { "retry-after": "5" } })
    }
    return HttpServerResponse.jsonUnsafe({ status: "ok" }, { headers: { "cache-control": "no-store" } })
  }).pipe(Effect.annotateLogs("service", "health"))
})
