/**
 * Runs the jobs of the job table: each on its schedule in its own fiber, and
 * any of them on request with `runNow`.
 *
 * Only one run of a job at a time, across every process on the database. A
 * run first takes a PostgreSQL session advisory lock for its job with
 * `pg_try_advisory_lock`, on a pool connection reserved for the whole run
 * (`sql.reserve`). It releases the lock with `pg_advisory_unlock` when the
 * run ends. The lock lives on the application role's own pool, so the
 * running service needs no owner credentials for it. A process that dies
 * loses its connections, and PostgreSQL releases their locks with them. When
 * the lock is taken, a manual run fails with `JobAlreadyRunning`, and a
 * scheduled run is skipped without a `job_runs` row.
 *
 * Each run that gets the lock has a `job_runs` row: trigger, start, end, rows
 * affected, outcome and the error text, with credentials and API keys
 * removed. A run interrupted by shutdown is recorded as failed. Any row of
 * the job still marked running when the next run takes the lock belongs to a
 * process that stopped mid-run, and is marked failed then.
 *
 * Scheduled fibers wait `startDelay` after the layer starts, then run the
 * job and wait its schedule after each run. A failing run is recorded and
 * logged, and the schedule goes on. Closing the layer's scope interrupts the
 * fibers and any run in progress. Each run then records its interruption and
 * releases its lock, before the SQL pool closes.
 *
 * NOTE: a run holds two pool connections while its body queries, the
 * reserved one for the lock and one for the body's statement. If the lock
 * connection breaks mid-run, PostgreSQL releases the lock and another
 * instance may start the same job before this run ends. The bodies are
 * idempotent, so such an overlap repeats work without corrupting data (two
 * rollups of the same day make PostgreSQL fail one of them).
 */
import { Cause, Clock, Context, Data, Duration, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type { Connection } from "effect/sql/SqlConnection"
import type { SqlError } from "effect/sql/SqlError"
import { type Job, JOBS, JobPartlyFailed } from "./Jobs.ts"

export type JobTrigger = "schedule" | "manual"
export type JobOutcome = "running" | "succeeded" | "failed"

export class JobNotFound extends Data.TaggedError("JobNotFound")<{ readonly name: string }> {}

export class JobAlreadyRunning extends Data.TaggedError("JobAlreadyRunning")<{ readonly name: string }> {}

/** A `job_runs` row. */
export interface JobRun {
  readonly id: string
  readonly job: string
  readonly trigger: JobTrigger
  readonly startedAt: Date
  readonly finishedAt: Date | null
  readonly outcome: JobOutcome
  readonly rowsAffected: number | null
  readonly error: string | null
}

/** Outcome of a finished run, as recorded in `job_runs`. */
export interface RunResult {
  readonly outcome: "succeeded" | "failed"
  readonly rows: number | null
  readonly error: string | null
}

export interface StartedRun {
  readonly runId: string
  /** Waits for the run to end. The run goes on in the background whether or not this is awaited. */
  readonly result: Effect.Effect<RunResult>
}

export interface RunsPage {
  /** Rows per page, from 1 to `MAX_RUNS_PAGE`. */
  readonly limit: number
  /** Only runs older than this run id (ids are UUIDv7, so they sort by creation time). */
  readonly before?: string | undefined
}

export interface SchedulerShape {
  readonly jobs: ReadonlyArray<{ readonly name: string; readonly description: string }>
  /** Takes the job's lock and records the run, then runs the body in the background. */
  readonly runNow: (name: string) => Effect.Effect<StartedRun, JobNotFound | JobAlreadyRunning | SqlError>
  /** The latest runs, newest first. */
  readonly listRuns: (page: RunsPage) => Effect.Effect<ReadonlyArray<JobRun>, SqlError>
}

export interface SchedulerOptions {
  /** Delay before each job's first scheduled run, one minute by default. */
  readonly startDelay?: Duration.Input
}

export const MAX_RUNS_PAGE = 100

/** Bound on recording a run's end, so that a database outage cannot hold up shutdown. */
const RECORD_TIMEOUT = Duration.seconds(5)
const MAX_ERROR_LENGTH = 500
const INTERRUPTED_ERROR = "interrupted: the service stopped during the run"
const ABANDONED_ERROR = "abandoned: the process running it stopped before the run ended"

export class Scheduler extends Context.Service<Scheduler, SchedulerShape>()("porchlight/jobs/Scheduler") {
  /** Builds a scheduler for `jobs`, such as a test's own table. */
  static readonly layerWith = <R>(jobs: ReadonlyArray<Job<R>>, options: SchedulerOptions = {}) =>
    Layer.effect(Scheduler, makeScheduler(jobs, options))

  /** The scheduler for the service's job table. */
  static readonly layer = Scheduler.layerWith(JOBS)
}

// A function declaration, so that the class's static `layer` above can call it.
function makeScheduler<R>(jobs: ReadonlyArray<Job<R>>, options: SchedulerOptions) {
  return Effect.gen(function*() {
    const sql = yield* SqlClient
    const layerScope = yield* Effect.scope
    const services = yield* Effect.context<R>()
    const byName = new Map<string, Job<R>>()
    for (const job of jobs) {
      if (byName.has(job.name)) return yield* Effect.die(new Error(`the job table names ${job.name} twice`))
      byName.set(job.name, job)
    }

    // Only taking the lock and recording the run can be interrupted. Once
    // the run has its row, the fork that releases the lock at the end always
    // happens, so an interrupted caller cannot release the lock of a body
    // that is still running.
    const startRun = (job: Job<R>, trigger: JobTrigger) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          // The run's scope is a child of the layer's scope, so shutdown
          // releases the lock even if the run's fiber never started.
          const runScope = yield* Scope.fork(layerScope, "sequential")
          const runId = yield* restore(Scope.provide(lockAndRecord(sql, job.name, trigger), runScope)).pipe(
            Effect.onError((cause) => Scope.close(runScope, Exit.failCause(cause)))
          )
          const fiber = yield* runBody(job, runId, trigger).pipe(
            Effect.ensuring(Scope.close(runScope, Exit.void)),
            Effect.forkIn(layerScope)
          )
          return { runId, result: Fiber.join(fiber) }
        })
      )

    const runBody = (job: Job<R>, runId: string, trigger: JobTrigger): Effect.Effect<RunResult> =>
      Effect.gen(function*() {
        const startedAt = yield* Clock.currentTimeMillis
        yield* Effect.logInfo("job started")
        // The services captured when the layer was built take precedence over
        // the caller's, log annotations included, so the run's annotations
        // are set again inside them.
        const exit = yield* Effect.exit(job.run(new Date(startedAt)).pipe(
          Effect.annotateLogs({ job: job.name, runId, trigger }),
          Effect.provideContext(services)
        ))
        const durationMs = (yield* Clock.currentTimeMillis) - startedAt
        const result = resultOf(exit)
        yield* recordEnd(sql, runId, result)
        if (result.outcome === "succeeded") {
          yield* Effect.logInfo("job finished").pipe(Effect.annotateLogs({ rows: result.rows, durationMs }))
        } else {
          // The redacted error text only, unless a defect needs its stack
          // trace: an error message may contain a connection URL.
          const defect = exit._tag === "Failure" && Cause.hasDies(exit.cause) ? exit.cause : Cause.empty
          yield* Effect.logError("job failed", defect).pipe(
            Effect.annotateLogs({ rows: result.rows, durationMs, error: result.error })
          )
        }
        return result
      }).pipe(
        Effect.onInterrupt(() =>
          Effect.andThen(
            recordEnd(sql, runId, { outcome: "failed", rows: null, error: INTERRUPTED_ERROR }),
            Effect.logWarning("job interrupted")
          )
        ),
        Effect.annotateLogs({ service: "scheduler", job: job.name, runId, trigger })
      )

    const runScheduled = (job: Job<R>) =>
      startRun(job, "schedule").pipe(
        Effect.flatMap((started) => started.result),
        Effect.asVoid,
        Effect.catchTag("JobAlreadyRunning", () =>
          Effect.logDebug("scheduled run skipped: another run of the job holds its lock")),
        // Only the start can fail here, because the body's failures become
        // recorded results. The error is logged and the schedule goes on.
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.failCause(cause)
            : Effect.logError("scheduled run could not start; the schedule goes on", cause)),
        Effect.annotateLogs({ job: job.name, trigger: "schedule" })
      )

    const startDelay = options.startDelay ?? Duration.minutes(1)
    for (const job of jobs) {
      yield* Effect.sleep(startDelay).pipe(
        Effect.andThen(Effect.repeat(runScheduled(job), job.schedule)),
        Effect.forkScoped
      )
    }
    yield* Effect.logInfo("job scheduler started").pipe(
      Effect.annotateLogs({ jobs: jobs.map((job) => job.name).join(","), startDelayMs: Duration.toMillis(startDelay) })
    )

    const runNow = (name: string) =>
      Effect.gen(function*() {
        const job = byName.get(name)
        if (job === undefined) return yield* new JobNotFound({ name })
        return yield* startRun(job, "manual")
      })

    return Scheduler.of({
      jobs: jobs.map((job) => ({ name: job.name, description: job.description })),
      runNow,
      listRuns: (page) => listRuns(sql, page)
    })
  }).pipe(Effect.annotateLogs("service", "scheduler"))
}

/**
 * Reserves a connection in the current scope, takes the job's advisory lock
 * on it (released when the scope closes), marks runs abandoned by a stopped
 * process as failed, and inserts the run's row. Returns the run id.
 */
const lockAndRecord = (sql: SqlClient, job: string, trigger: JobTrigger) =>
  Effect.gen(function*() {
    const connection = yield* sql.reserve
    const locked = yield* Effect.acquireRelease(
      tryLock(connection, job),
      (locked) => locked ? unlock(connection, job) : Effect.void
    )
    if (!locked) return yield* new JobAlreadyRunning({ name: job })
    // Holding the lock, no other run of this job is in progress anywhere.
    yield* sql`
      UPDATE job_runs SET outcome = 'failed', finished_at = now(), error = ${ABANDONED_ERROR}
      WHERE job = ${job} AND outcome = 'running'`
    const rows = yield* sql<{ readonly id: string }>`
      INSERT INTO job_runs (job, trigger) VALUES (${job}, ${trigger}) RETURNING id`
    const runId = rows[0]?.id
    if (runId === undefined) return yield* Effect.die(new Error("INSERT INTO job_runs returned no id"))
    return runId
  })

/**
 * Returns the two int4 advisory lock keys of a job. The first sets the job
 * locks apart from any other advisory lock on the database ("JOBS" in
 * ASCII), and the second is the FNV-1a hash of the job name.
 */
export const jobLockKeys = (job: string): readonly [number, number] => {
  let hash = 0x811c9dc5
  for (const byte of new TextEncoder().encode(job)) {
    hash = Math.imul(hash ^ byte, 0x01000193)
  }
  return [0x4a4f4253, hash | 0]
}

const tryLock = (connection: Connection, job: string) =>
  Effect.map(
    connection.execute("SELECT pg_try_advisory_lock($1::int4, $2::int4) AS locked", jobLockKeys(job), undefined),
    (rows: ReadonlyArray<unknown>) => booleanColumn(rows[0], "locked")
  )

const unlock = (connection: Connection, job: string) =>
  connection.execute("SELECT pg_advisory_unlock($1::int4, $2::int4) AS unlocked", jobLockKeys(job), undefined).pipe(
    Effect.flatMap((rows: ReadonlyArray<unknown>) =>
      booleanColumn(rows[0], "unlocked")
        ? Effect.void
        : Effect.logWarning("job lock was not held at the end of the run").pipe(Effect.annotateLogs({ job }))),
    // A broken connection has lost its session, and the lock with it.
    Effect.catch((error) =>
      Effect.logWarning("could not release the job lock; PostgreSQL releases it with the connection").pipe(
        Effect.annotateLogs({ job, error: error.message })
      ))
  )

const booleanColumn = (row: unknown, column: string): boolean =>
  typeof row === "object" && row !== null && column in row && Reflect.get(row, column) === true

const recordEnd = (sql: SqlClient, runId: string, result: RunResult) =>
  sql`
    UPDATE job_runs SET finished_at = now(), outcome = ${result.outcome}, rows_affected = ${result.rows},
                        error = ${result.error}
    WHERE id = ${runId} AND outcome = 'running'`.pipe(
    Effect.timeoutOrElse({ duration: RECORD_TIMEOUT, orElse: () => Effect.fail(new RecordTimeout()) }),
    Effect.catch((error) =>
      Effect.logError("could not record the end of a job run; the next run marks it failed").pipe(
        Effect.annotateLogs({ runId, error: error.message })
      ))
  )

class RecordTimeout extends Data.TaggedError("RecordTimeout")<{}> {
  override get message(): string {
    return `no answer from the database within ${Duration.toMillis(RECORD_TIMEOUT)} ms`
  }
}

const resultOf = (exit: Exit.Exit<number, unknown>): RunResult => {
  if (exit._tag === "Success") return { outcome: "succeeded", rows: exit.value, error: null }
  const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  if (failure !== undefined && failure.error instanceof JobPartlyFailed) {
    return { outcome: "failed", rows: failure.error.rows, error: redactError(failure.error.message) }
  }
  if (Cause.hasInterruptsOnly(exit.cause)) return { outcome: "failed", rows: null, error: INTERRUPTED_ERROR }
  return { outcome: "failed", rows: null, error: redactError(describeCause(exit.cause)) }
}

/** Describes the first failure or defect of `cause` in one line, without stack traces. */
const describeCause = (cause: Cause.Cause<unknown>): string => {
  for (const reason of cause.reasons) {
    if (reason._tag === "Fail") return describeValue(reason.error)
    if (reason._tag === "Die") return `defect: ${describeValue(reason.defect)}`
  }
  return "failed without an error value"
}

const describeValue = (value: unknown): string => {
  if (value instanceof Error) {
    const tag = "_tag" in value && typeof value._tag === "string" ? value._tag : value.name
    return value.message === "" ? tag : `${tag}: ${value.message}`
  }
  return typeof value === "string" ? value : String(value)
}

/**
 * Removes what could be a secret from an error text stored in `job_runs`,
 * which any admin key can read: the user and password of URLs, API keys,
 * and `password=` settings. Then limits the text to `MAX_ERROR_LENGTH`.
 */
export const redactError = (text: string): string => {
  const redacted = text
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, "$1[redacted]@")
    .replace(/\b(sk|pk)_[A-Za-z0-9_-]{8,}/g, "$1_[redacted]")
    .replace(/\b(password|passwd|pwd|secret|token)(\s*[=:]\s*)\S+/gi, "$1$2[redacted]")
    .replace(/\s+/g, " ")
    .trim()
  return redacted.length > MAX_ERROR_LENGTH ? `${redacted.slice(0, MAX_ERROR_LENGTH - 1)}…` : redacted
}

const listRuns = (sql: SqlClient, page: RunsPage) =>
  Effect.map(
    sql<RunRow>`
      SELECT id, job, trigger, started_at AS "startedAt", finished_at AS "finishedAt", outcome::text AS outcome,
             rows_affected::float8 AS "rowsAffected", error
      FROM job_runs
      ${page.before === undefined ? sql`` : sql`WHERE id < ${page.before}::uuid`}
      ORDER BY id DESC
      LIMIT ${pageLimit(page.limit)}`,
    (rows) => rows.map(toJobRun)
  )

/** Clamps a page size to 1 to `MAX_RUNS_PAGE`; anything that is not a number gets the maximum. */
const pageLimit = (limit: number) =>
  Number.isFinite(limit) ? Math.min(Math.max(1, Math.trunc(limit)), MAX_RUNS_PAGE) : MAX_RUNS_PAGE

interface RunRow {
  readonly id: string
  readonly job: string
  readonly trigger: string
  readonly startedAt: Date
  readonly finishedAt: Date | null
  readonly outcome: string
  readonly rowsAffected: number | null
  readonly error: string | null
}

const toJobRun = (row: RunRow): JobRun => ({
  ...row,
  trigger: row.trigger === "manual" ? "manual" : "schedule",
  outcome: toOutcome(row.outcome)
})

const toOutcome = (text: string): JobOutcome => {
  if (text === "succeeded" || text === "failed") return text
  return "running"
}
