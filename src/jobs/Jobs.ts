/**
 * The job table: every background job, with its name, schedule, a short
 * description and its body. `Scheduler` runs each one on its schedule and on
 * request. The layer it builds from this table requires the services of
 * every body, so a job whose body needs a new service is a type error in
 * `src/App.ts` until that service is provided.
 *
 * Bodies are idempotent and succeed with the number of rows they affected.
 * A body that works per tenant logs a failing tenant and goes on with the
 * next, then fails with `JobPartlyFailed`, so that the run is recorded as
 * failed with the rows it did affect.
 */
import { Data, Effect, Schedule } from "effect"
import { ConsentExpiry } from "../services/ConsentExpiry.ts"
import { purgeExpired } from "./Purge.ts"
import { Rollup } from "./Rollup.ts"

export interface Job<R> {
  /** Name in URLs, logs, `job_runs.job` and the advisory lock key. */
  readonly name: string
  readonly description: string
  /** Spacing of scheduled runs, from the end of one run to the start of the next. */
  readonly schedule: Schedule.Schedule<unknown>
  /** Runs the job once as of `now` and succeeds with the number of rows affected. */
  readonly run: (now: Date) => Effect.Effect<number, unknown, R>
}

/** A run that went on past failing parts (tenants, tables) and affected `rows` rows in the others. */
export class JobPartlyFailed extends Data.TaggedError("JobPartlyFailed")<{
  readonly rows: number
  readonly failedParts: number
  /** Plural noun for a part, such as "tenant tables" or "property days". */
  readonly partName: string
}> {
  override get message(): string {
    return `${this.partName} that failed and were skipped: ${this.failedParts}. The run's log lines name them.`
  }
}

/** Keeps the table's entries typed by their own requirements. */
export const defineJob = <R>(job: Job<R>): Job<R> => job

// `rollupRecent` counts property days, not rows, so the run's row count is
// the number of property days rolled up.
export const rollupJob = defineJob({
  name: "rollup",
  description: "Recomputes today and yesterday of every property's daily rollups, in the property's time zone.",
  schedule: Schedule.spaced("5 minutes"),
  run: (now) =>
    Effect.gen(function*() {
      const rollup = yield* Rollup
      const result = yield* rollup.rollupRecent(now)
      if (result.failed > 0) {
        return yield* new JobPartlyFailed({
          rows: result.rolledUp,
          failedParts: result.failed,
          partName: "property days"
        })
      }
      return result.rolledUp
    })
})

export const purgeJob = defineJob({
  name: "purge",
  description: "Deletes raw events, sessions, receipts, rejections, expired logins and rollups past retention.",
  schedule: Schedule.spaced("1 hour"),
  run: (now) =>
    Effect.flatMap(purgeExpired(now), (report) =>
      report.failures === 0
        ? Effect.succeed(report.totalDeleted)
        : Effect.fail(new JobPartlyFailed({
          rows: report.totalDeleted,
          failedParts: report.failures,
          partName: "tenant tables"
        })))
})

// NOTE: `ConsentExpiry.run` stops at the first tenant whose batch fails, so
// a failing tenant fails the whole consent run instead of being skipped.
export const consentJob = defineJob({
  name: "consent",
  description: "Marks implied consent older than six months as expired, with a consent event per lead.",
  schedule: Schedule.spaced("1 hour"),
  run: (now) =>
    Effect.gen(function*() {
      const consentExpiry = yield* ConsentExpiry
      const counts = yield* consentExpiry.run(now)
      return counts.reduce((total, tenant) => total + tenant.expired, 0)
    })
})

const table = [rollupJob, purgeJob, consentJob] as const

/** The services that the job bodies require, together. */
export type JobServices = ServicesOf<(typeof table)[number]>

type ServicesOf<J> = J extends Job<infer R> ? R : never

/** Every job the service runs. */
export const JOBS: ReadonlyArray<Job<JobServices>> = table
