/**
 * Background jobs over HTTP, with an admin key:
 *
 * - `POST /v1/admin/jobs/{name}/run` starts the job now and returns 202 with
 *   `{"runId"}` once the run holds the job's lock and has its `job_runs` row.
 *   The job then runs in the background. An unknown job is 404, and a job
 *   already running in any instance is 409.
 * - `GET /v1/admin/jobs/runs` lists the latest runs, newest first, with
 *   `?limit=` (1 to 100, 20 by default) and `?before=<runId>` for the next
 *   page, which starts after the last run of the previous one.
 *
 * Jobs cover every tenant, so an admin key limited to one property gets 403.
 */
import { Effect } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { type JobRun, MAX_RUNS_PAGE, Scheduler } from "../jobs/Scheduler.ts"
import { ApiError, type FieldProblem } from "./ApiError.ts"
import { requireKey } from "./Auth.ts"

const DEFAULT_RUNS_PAGE = 20
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export const runJob = Effect.gen(function*() {
  const key = yield* requireTenantWideAdminKey
  const name = (yield* HttpRouter.params)["name"] ?? ""
  const scheduler = yield* Scheduler
  const started = yield* scheduler.runNow(name).pipe(
    Effect.catchTags({
      JobNotFound: () =>
        Effect.fail(new ApiError({
          status: 404,
          code: "job_not_found",
          params: { name: truncate(name), known: scheduler.jobs.map((job) => job.name).join(", ") }
        })),
      JobAlreadyRunning: () =>
        Effect.fail(new ApiError({ status: 409, code: "job_already_running", params: { name } }))
    })
  )
  yield* Effect.logInfo("job run requested").pipe(
    Effect.annotateLogs({ job: name, runId: started.runId, tenantId: key.tenantId, keyId: key.keyId })
  )
  return HttpServerResponse.jsonUnsafe({ runId: started.runId }, { status: 202 })
})

export const listJobRuns = Effect.gen(function*() {
  yield* requireTenantWideAdminKey
  const request = yield* HttpServerRequest.HttpServerRequest
  const page = yield* parsePage(request.url)
  const scheduler = yield* Scheduler
  const runs = yield* scheduler.listRuns(page)
  const last = runs.at(-1)
  return HttpServerResponse.jsonUnsafe({
    runs: runs.map(toJson),
    // The `before` value for the next page, or null when this page is the last.
    nextBefore: runs.length === page.limit && last !== undefined ? last.id : null
  }, { headers: { "cache-control": "no-store" } })
})

const requireTenantWideAdminKey = Effect.gen(function*() {
  const key = yield* requireKey("admin")
  if (key.propertyId !== null) {
    return yield* new ApiError({ status: 403, code: "key_limited_to_property" })
  }
  return key
})

const parsePage = (url: string) =>
  Effect.gen(function*() {
    const queryStart = url.indexOf("?")
    const query = new URLSearchParams(queryStart === -1 ? "" : url.slice(queryStart + 1))
    const limitText = query.get("limit")
    const before = query.get("before")
    const problems: Array<FieldProblem> = []
    const limit = limitText === null ? DEFAULT_RUNS_PAGE : Number(limitText)
    if (!/^\d+$/.test(limitText ?? "1") || !Number.isInteger(limit) || limit < 1 || limit > MAX_RUNS_PAGE) {
      problems.push({ path: "limit", code: "invalid_limit", params: { max: MAX_RUNS_PAGE } })
    }
    if (before !== null && !UUID_PATTERN.test(before)) {
      problems.push({ path: "before", code: "invalid_run_id" })
    }
    if (problems.length > 0) {
      return yield* new ApiError({ status: 400, code: "invalid_request", fields: problems })
    }
    return { limit, before: before ?? undefined }
  })

const toJson = (run: JobRun) => ({
  id: run.id,
  name: run.job,
  trigger: run.trigger,
  startedAt: run.startedAt.toISOString(),
  finishedAt: run.finishedAt?.toISOString() ?? null,
  outcome: run.outcome,
  rows: run.rowsAffected,
  error: run.error
})

const truncate = (text: string) => text.length > 100 ? `${text.slice(0, 100)}…` : text
