import { Effect, Layer, Logger, ManagedRuntime, Redacted, References, Schedule } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { defineJob, type Job, JOBS } from "../src/jobs/Jobs.ts"
import { PURGED_TABLES, type PurgedTable, purgeExpired, utcDateMonthsBefore } from "../src/jobs/Purge.ts"
import { Rollup } from "../src/jobs/Rollup.ts"
import { jobLockKeys, redactError, Scheduler, type SchedulerOptions } from "../src/jobs/Scheduler.ts"
import { ConsentExpiry } from "../src/services/ConsentExpiry.ts"
import { type AppDatabase, appSqlLayer, createAppDatabase, TEST_PEPPER } from "./support/appDatabase.ts"
import { type ServiceProcess, startService } from "./support/serviceProcess.ts"
import { createTestDatabase, type TestDatabase } from "./support/testDatabase.ts"

const NOW = new Date("2026-06-15T12:00:00.000Z")
const SECOND = 1_000
const DAY = 86_400_000
const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs)

let database: AppDatabase

/** Opens a connection as the owner, which bypasses row-level security. The caller ends it. */
const ownerClient = async (url: Redacted.Redacted<URL>) => {
  const client = new pg.Client({ connectionString: Redacted.value(url).href })
  client.on("error", () => undefined)
  await client.connect()
  return client
}

/** Runs one statement as the owner and returns its rows. */
const ownerRows = async (
  url: Redacted.Redacted<URL>,
  text: string,
  values?: ReadonlyArray<unknown>
): Promise<Array<Record<string, unknown>>> => {
  const client = await ownerClient(url)
  try {
    return (await client.query(text, values === undefined ? undefined : [...values])).rows
  } finally {
    await client.end()
  }
}

const owner = (text: string, values?: ReadonlyArray<unknown>) => ownerRows(database.url, text, values)

/** Polls `check` every 25 ms until it returns true, for at most `timeoutMs`. */
const waitUntil = async (what: string, check: () => Promise<boolean>, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** Reads a value out of parsed JSON by property names and indexes; undefined where the path ends early. */
const pick = (value: unknown, ...path: ReadonlyArray<string | number>): unknown => {
  let current = value
  for (const key of path) {
    if (typeof current !== "object" || current === null) return undefined
    current = Reflect.get(current, key)
  }
  return current
}

interface LogEntry {
  readonly message: string
  readonly level: string
  readonly annotations: Readonly<Record<string, unknown>>
}

/** Log lines of the layers built by `schedulerRuntime`, for the checks on what the scheduler logs. */
const logs: Array<LogEntry> = []

const captureLogs = Layer.mergeAll(
  Logger.layer([Logger.make<unknown, void>(({ fiber, logLevel, message }) => {
    const parts = Array.isArray(message) ? message : [message]
    logs.push({
      message: String(parts[0]),
      level: logLevel,
      annotations: { ...fiber.getRef(References.CurrentLogAnnotations) }
    })
  })]),
  Layer.succeed(References.MinimumLogLevel, "Debug")
)

type SchedulerRuntime = ManagedRuntime.ManagedRuntime<Scheduler, unknown>

const runtimes: Array<SchedulerRuntime> = []

const track = (runtime: SchedulerRuntime) => {
  runtimes.push(runtime)
  return runtime
}

/** A scheduler over `jobs` with its own SQL pool, as a second process would have. */
const schedulerRuntime = (jobs: ReadonlyArray<Job<never>>, options: SchedulerOptions = { startDelay: "1 hour" }) =>
  track(ManagedRuntime.make(
    Scheduler.layerWith(jobs, options).pipe(Layer.provide(appSqlLayer(database)), Layer.provideMerge(captureLogs))
  ))

/** Builds the runtime's layers now (a ManagedRuntime builds them on first use), which starts its schedules. */
const started = async (runtime: SchedulerRuntime) => {
  await runtime.runPromise(Effect.void)
  return runtime
}

/** Starts `name` on `runtime`; `undefined` when the job is already running. */
const startOn = (runtime: SchedulerRuntime, name: string) =>
  runtime.runPromise(Effect.gen(function*() {
    const scheduler = yield* Scheduler
    return yield* scheduler.runNow(name)
  }).pipe(Effect.catchTag("JobAlreadyRunning", () => Effect.succeed(undefined))))

/** Runs `name` on `runtime` and waits for the end; "already running" when the lock is taken. */
const runOn = (runtime: SchedulerRuntime, name: string) =>
  runtime.runPromise(Effect.gen(function*() {
    const scheduler = yield* Scheduler
    const started = yield* scheduler.runNow(name)
    return { runId: started.runId, ...(yield* started.result) }
  }).pipe(Effect.catchTag("JobAlreadyRunning", () => Effect.succeed("already running" as const))))

/** Makes a job whose runs wait until `release` is called. `runs` counts the bodies that started. */
const gatedJob = (name: string) => {
  let open: () => void = () => undefined
  let gate = new Promise<void>((resolve) => {
    open = resolve
  })
  const state = {
    runs: 0,
    release: () => open(),
    reset: () => {
      gate = new Promise<void>((resolve) => {
        open = resolve
      })
    }
  }
  const job = defineJob({
    name,
    description: "waits for the test",
    schedule: Schedule.spaced("50 millis"),
    run: () =>
      Effect.gen(function*() {
        state.runs++
        yield* Effect.promise(() => gate)
        return 3
      })
  })
  return { job, state }
}

const jobRuns = (job: string) =>
  owner(
    `SELECT id, trigger, outcome::text AS outcome, rows_affected::int AS rows, error, finished_at
     FROM job_runs WHERE job = $1 ORDER BY id`,
    [job]
  )

beforeAll(async () => {
  database = await createAppDatabase()
})

afterAll(async () => {
  for (const runtime of runtimes) await runtime.dispose()
})

describe("retention purge", () => {
  interface SeededTenant {
    readonly tenantId: string
    readonly propertyId: string
  }

  const seedTenant = async (label: string): Promise<SeededTenant> => {
    const [tenant] = await owner("INSERT INTO tenants (name) VALUES ($1) RETURNING id", [label])
    const tenantId = String(tenant?.["id"])
    const [property] = await owner(
      "INSERT INTO properties (tenant_id, slug, name, domains) VALUES ($1, 'site', $2, '{example.com}') RETURNING id",
      [tenantId, label]
    )
    return { tenantId, propertyId: String(property?.["id"]) }
  }

  /**
   * For every rule, one row just past the window (purged), one exactly at the
   * cutoff and one just inside it (both kept), plus a visitor and a lead from
   * long ago, which the purge keeps.
   */
  const seedRetentionRows = async ({ tenantId, propertyId }: SeededTenant) => {
    const eventCutoff = at(-90 * DAY)
    const receiptCutoff = at(-DAY)
    const times = (cutoff: Date) =>
      [
        ["purged", new Date(cutoff.getTime() - SECOND)],
        ["at-cutoff", cutoff],
        ["inside", new Date(cutoff.getTime() + SECOND)]
      ] as const

    const [visitor] = await owner(
      `INSERT INTO visitors (tenant_id, property_id, anon_id, first_seen_at, last_seen_at)
       VALUES ($1, $2, 'old-visitor', $3, $3) RETURNING id`,
      [tenantId, propertyId, at(-400 * DAY)]
    )
    const visitorId = String(visitor?.["id"])
    await owner(
      `INSERT INTO leads (tenant_id, property_id, email_normalized, email_display, first_captured_at, last_captured_at)
       VALUES ($1, $2, 'old@example.com', 'old@example.com', $3, $3)`,
      [tenantId, propertyId, at(-400 * DAY)]
    )
    const [user] = await owner(
      "INSERT INTO users (tenant_id, email, password_hash) VALUES ($1, 'user@example.com', 'x') RETURNING id",
      [tenantId]
    )
    const userId = String(user?.["id"])

    for (const [label, time] of times(eventCutoff)) {
      const [session] = await owner(
        `INSERT INTO sessions (tenant_id, property_id, visitor_id, started_at, last_event_at, landing_path)
         VALUES ($1, $2, $3, $4, $4, $5) RETURNING id`,
        [tenantId, propertyId, visitorId, time, label]
      )
      await owner(
        `INSERT INTO events (tenant_id, property_id, visitor_id, session_id, event_type, path, "timestamp")
         VALUES ($1, $2, $3, $4, 'page_view', $5, $6)`,
        [tenantId, propertyId, visitorId, session?.["id"], label, time]
      )
      await owner(
        "INSERT INTO ingest_rejections (tenant_id, property_id, received_at, reason) VALUES ($1, $2, $3, $4)",
        [tenantId, propertyId, time, label]
      )
    }

    for (const [label, time] of times(receiptCutoff)) {
      await owner(
        "INSERT INTO event_receipts (tenant_id, property_id, client_event_id, received_at) VALUES ($1, $2, $3, $4)",
        [tenantId, propertyId, label, time]
      )
    }

    for (const [label, time] of times(NOW)) {
      await owner(
        "INSERT INTO auth_sessions (tenant_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4)",
        [tenantId, userId, Buffer.from(`${tenantId}-${label}`), time]
      )
    }

    // 24 months before 2026-06-15 is 2024-06-15: the day before goes, that day stays.
    for (const [label, day] of [["purged", "2024-06-14"], ["at-cutoff", "2024-06-15"], ["inside", "2024-06-16"]]) {
      await owner(
        `INSERT INTO daily_metric_rollups (tenant_id, property_id, day, dimension, dimension_value)
         VALUES ($1, $2, $3, 'path', $4)`,
        [tenantId, propertyId, day, label]
      )
      await owner("INSERT INTO daily_ingest_rollups (tenant_id, property_id, day) VALUES ($1, $2, $3)", [
        tenantId,
        propertyId,
        day
      ])
      await owner(
        `INSERT INTO daily_visitors (tenant_id, property_id, day, visitor_id, "returning")
         VALUES ($1, $2, $3, $4, false)`,
        [tenantId, propertyId, day, visitorId]
      )
    }
  }

  /** The labels or days left in each purged table for a tenant. */
  const remaining = async (tenantId: string) => ({
    events: await labels("SELECT path AS label FROM events WHERE tenant_id = $1", tenantId),
    sessions: await labels("SELECT landing_path AS label FROM sessions WHERE tenant_id = $1", tenantId),
    event_receipts: await labels("SELECT client_event_id AS label FROM event_receipts WHERE tenant_id = $1", tenantId),
    ingest_rejections: await labels("SELECT reason AS label FROM ingest_rejections WHERE tenant_id = $1", tenantId),
    auth_sessions: await labels(
      "SELECT convert_from(token_hash, 'UTF8') AS label FROM auth_sessions WHERE tenant_id = $1",
      tenantId,
      `${tenantId}-`
    ),
    daily_metric_rollups: await labels(
      "SELECT dimension_value AS label FROM daily_metric_rollups WHERE tenant_id = $1",
      tenantId
    ),
    daily_ingest_rollups: await labels(
      "SELECT day::text AS label FROM daily_ingest_rollups WHERE tenant_id = $1",
      tenantId
    ),
    daily_visitors: await labels("SELECT day::text AS label FROM daily_visitors WHERE tenant_id = $1", tenantId)
  })

  const labels = async (text: string, tenantId: string, prefix = "") =>
    (await owner(text, [tenantId])).map((row) => String(row["label"]).slice(prefix.length)).sort()

  const KEPT = ["at-cutoff", "inside"]
  const KEPT_DAYS = ["2024-06-15", "2024-06-16"]

  const purgeRuntime = () => {
    const runtime = ManagedRuntime.make(appSqlLayer(database).pipe(Layer.provideMerge(captureLogs)))
    return {
      purge: (options?: { batchSize: number }) => runtime.runPromise(purgeExpired(NOW, options)),
      dispose: () => runtime.dispose()
    }
  }

  it("computes the 24-month cutoff day in UTC", () => {
    expect(utcDateMonthsBefore(NOW, 24)).toBe("2024-06-15")
    expect(utcDateMonthsBefore(new Date("2028-02-29T23:59:59Z"), 24)).toBe("2026-02-28")
    expect(utcDateMonthsBefore(new Date("2026-03-31T00:00:00Z"), 1)).toBe("2026-02-28")
    expect(utcDateMonthsBefore(new Date("2026-01-15T00:00:00Z"), 13)).toBe("2024-12-15")
  })

  it("deletes exactly the rows past each window", async () => {
    const alpha = await seedTenant("purge-alpha")
    const bravo = await seedTenant("purge-bravo")
    await seedRetentionRows(alpha)
    await seedRetentionRows(bravo)
    const runtime = purgeRuntime()

    const report = await runtime.purge()
    const again = await runtime.purge()
    await runtime.dispose()

    for (const table of PURGED_TABLES) {
      expect({ table, deleted: report.deleted[table] }).toEqual({ table, deleted: 2 })
    }
    expect(report.totalDeleted).toBe(2 * PURGED_TABLES.length)
    expect(report.failures).toBe(0)
    for (const tenant of [alpha, bravo]) {
      const left = await remaining(tenant.tenantId)
      const expected: Record<PurgedTable, ReadonlyArray<string>> = {
        events: KEPT,
        sessions: KEPT,
        event_receipts: KEPT,
        ingest_rejections: KEPT,
        auth_sessions: KEPT,
        daily_metric_rollups: KEPT,
        daily_ingest_rollups: KEPT_DAYS,
        daily_visitors: KEPT_DAYS
      }
      expect(left).toEqual(expected)
      const [kept] = await owner(
        `SELECT (SELECT count(*)::int FROM visitors WHERE tenant_id = $1) AS visitors,
                (SELECT count(*)::int FROM leads WHERE tenant_id = $1) AS leads`,
        [tenant.tenantId]
      )
      expect(kept).toEqual({ visitors: 1, leads: 1 })
    }
    expect(again.totalDeleted).toBe(0)
  })

  it("commits each batch separately", async () => {
    const tenant = await seedTenant("purge-batches")
    const [visitor] = await owner(
      `INSERT INTO visitors (tenant_id, property_id, anon_id, first_seen_at, last_seen_at)
       VALUES ($1, $2, 'batch-visitor', $3, $3) RETURNING id`,
      [tenant.tenantId, tenant.propertyId, at(-100 * DAY)]
    )
    // 250 events and receipts past their windows, one second apart, oldest first.
    await owner(
      `INSERT INTO events (tenant_id, property_id, visitor_id, session_id, event_type, path, "timestamp")
       SELECT $1, $2, $3, uuidv7(), 'page_view', '/old', $4::timestamptz + n * interval '1 second'
       FROM generate_series(1, 250) AS n`,
      [tenant.tenantId, tenant.propertyId, visitor?.["id"], at(-100 * DAY)]
    )
    await owner(
      `INSERT INTO event_receipts (tenant_id, property_id, client_event_id, received_at)
       SELECT $1, $2, 'old-' || n, $3::timestamptz + n * interval '1 second' FROM generate_series(1, 250) AS n`,
      [tenant.tenantId, tenant.propertyId, at(-2 * DAY)]
    )
    const countOldEvents = async () =>
      Number((await owner("SELECT count(*)::int AS n FROM events WHERE tenant_id = $1", [tenant.tenantId]))[0]?.["n"])
    // Holding the newest event's row lock stops the third batch of 100, the
    // one that contains it, until the lock is released.
    const blocker = await ownerClient(database.url)
    await blocker.query("BEGIN")
    await blocker.query(
      `SELECT id FROM events WHERE tenant_id = $1 ORDER BY "timestamp" DESC LIMIT 1 FOR UPDATE`,
      [tenant.tenantId]
    )
    const runtime = purgeRuntime()

    const purging = runtime.purge({ batchSize: 100 })
    await waitUntil("the third batch to wait for the row lock", async () => {
      const rows = await owner(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%DELETE FROM "events"%'`
      )
      return Number(rows[0]?.["n"]) > 0
    })
    const leftWhileBlocked = await countOldEvents()
    await blocker.query("ROLLBACK")
    await blocker.end()
    const report = await purging
    await runtime.dispose()

    expect(leftWhileBlocked).toBe(50)
    expect(report.deleted.events).toBe(250)
    expect(report.deleted.event_receipts).toBe(250)
    expect(report.failures).toBe(0)
    expect(await countOldEvents()).toBe(0)
  })
})

describe("scheduler", () => {
  it("records a manual run and its logs", async () => {
    const job = defineJob({
      name: "count-seven",
      description: "affects seven rows",
      schedule: Schedule.spaced("1 hour"),
      run: () => Effect.as(Effect.logInfo("counting rows"), 7)
    })
    const runtime = schedulerRuntime([job])

    const result = await runOn(runtime, "count-seven")

    expect(result).toMatchObject({ outcome: "succeeded", rows: 7, error: null })
    const runId = result === "already running" ? undefined : result.runId
    const rows = await jobRuns("count-seven")
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ id: runId, trigger: "manual", outcome: "succeeded", rows: 7, error: null })
    expect(rows[0]?.["finished_at"]).toBeInstanceOf(Date)
    const runLogs = logs.filter((entry) => entry.annotations["runId"] === runId)
    expect(runLogs.map((entry) => entry.message)).toEqual(["job started", "counting rows", "job finished"])
    expect(runLogs[2]?.annotations).toMatchObject({ job: "count-seven", trigger: "manual", rows: 7 })
    expect(typeof runLogs[2]?.annotations["durationMs"]).toBe("number")
  })

  it("rejects an unknown job", async () => {
    const runtime = schedulerRuntime([])

    const failure = await runtime.runPromise(Effect.gen(function*() {
      const scheduler = yield* Scheduler
      return yield* Effect.flip(scheduler.runNow("no-such-job"))
    }))

    expect(failure).toMatchObject({ _tag: "JobNotFound", name: "no-such-job" })
  })

  it("runs once for two concurrent layers", async () => {
    const { job, state } = gatedJob("gated-twice")
    const first = schedulerRuntime([job])
    const second = schedulerRuntime([job])

    const attempts = await Promise.all([
      startOn(first, "gated-twice"),
      startOn(second, "gated-twice"),
      startOn(first, "gated-twice"),
      startOn(second, "gated-twice")
    ])
    const started = attempts.filter((attempt) => attempt !== undefined)
    const rowsWhileRunning = await jobRuns("gated-twice")
    state.release()
    const results = await Promise.all(started.map((run) => Effect.runPromise(run.result)))

    expect(started).toHaveLength(1)
    expect(rowsWhileRunning).toHaveLength(1)
    expect(rowsWhileRunning[0]).toMatchObject({ id: started[0]?.runId, outcome: "running", trigger: "manual" })
    expect(results).toEqual([{ outcome: "succeeded", rows: 3, error: null }])
    expect(state.runs).toBe(1)
    expect((await jobRuns("gated-twice")).map((row) => row["outcome"])).toEqual(["succeeded"])
  })

  it("releases the lock after each run", async () => {
    const { job, state } = gatedJob("gated-again")
    const runtime = schedulerRuntime([job])
    state.release()

    const first = await runOn(runtime, "gated-again")
    const second = await runOn(runtime, "gated-again")

    expect(first).toMatchObject({ outcome: "succeeded" })
    expect(second).toMatchObject({ outcome: "succeeded" })
    expect(state.runs).toBe(2)
  })

  it("skips scheduled runs while the lock is taken", async () => {
    const { job, state } = gatedJob("gated-scheduled")
    const holder = schedulerRuntime([job])
    const holderRun = await startOn(holder, "gated-scheduled")
    const scheduled = await started(schedulerRuntime([job], { startDelay: 0 }))

    await waitUntil("three skipped scheduled runs", async () =>
      logs.filter((entry) =>
        entry.annotations["job"] === "gated-scheduled" && entry.message.startsWith("scheduled run skipped")
      ).length >= 3)
    const rowsWhileHeld = await jobRuns("gated-scheduled")
    state.release()
    if (holderRun !== undefined) await Effect.runPromise(holderRun.result)
    await waitUntil("a scheduled run", async () =>
      (await jobRuns("gated-scheduled")).some((row) => row["trigger"] === "schedule" && row["outcome"] === "succeeded"))
    await scheduled.dispose()

    expect(holderRun).toBeDefined()
    expect(rowsWhileHeld.map((row) => row["trigger"])).toEqual(["manual"])
  })

  it("records failed scheduled runs and goes on", async () => {
    let calls = 0
    const job = defineJob({
      name: "flaky",
      description: "fails, then dies, then succeeds",
      schedule: Schedule.spaced("20 millis"),
      run: () =>
        Effect.suspend(() => {
          calls++
          if (calls === 1) {
            return Effect.fail(
              new Error("connect to postgres://porchlight:hunter2@db.internal/app failed, key sk_live_0123456789abcdef")
            )
          }
          if (calls === 2) return Effect.die(new Error("bug in the body"))
          return Effect.succeed(calls)
        })
    })
    const scheduled = await started(schedulerRuntime([job], { startDelay: 0 }))

    await waitUntil("four scheduled runs", async () => (await jobRuns("flaky")).length >= 4)
    await scheduled.dispose()
    const rows = await jobRuns("flaky")

    expect(rows.every((row) => row["trigger"] === "schedule")).toBe(true)
    expect(rows[0]).toMatchObject({ outcome: "failed", rows: null })
    expect(rows[0]?.["error"]).toBe("Error: connect to postgres://[redacted]@db.internal/app failed, key sk_[redacted]")
    expect(rows[1]).toMatchObject({ outcome: "failed", error: "defect: Error: bug in the body" })
    expect(rows[2]).toMatchObject({ outcome: "succeeded", rows: 3, error: null })
    const failedLogs = logs.filter((entry) => entry.annotations["job"] === "flaky" && entry.message === "job failed")
    expect(failedLogs.map((entry) => entry.annotations["runId"])).toEqual([rows[0]?.["id"], rows[1]?.["id"]])
    expect(failedLogs[0]?.level).toBe("Error")
  })

  it("records a run interrupted by shutdown", async () => {
    const { job, state } = gatedJob("gated-shutdown")
    const runtime = ManagedRuntime.make(
      Scheduler.layerWith([job], { startDelay: "1 hour" }).pipe(
        Layer.provide(appSqlLayer(database)),
        Layer.provideMerge(captureLogs)
      )
    )
    await startOn(runtime, "gated-shutdown")
    await waitUntil("the body to start", async () => state.runs === 1)

    await runtime.dispose()
    const rows = await jobRuns("gated-shutdown")
    state.release()
    const next = await runOn(schedulerRuntime([job]), "gated-shutdown")

    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ outcome: "failed", error: "interrupted: the service stopped during the run" })
    expect(next).toMatchObject({ outcome: "succeeded" })
  })

  it("rejects a lock held elsewhere, fails abandoned runs", async () => {
    const { job, state } = gatedJob("gated-abandoned")
    state.release()
    await owner("INSERT INTO job_runs (job, trigger) VALUES ('gated-abandoned', 'schedule')")
    const otherProcess = await ownerClient(database.url)
    await otherProcess.query("SELECT pg_advisory_lock($1, $2)", [...jobLockKeys("gated-abandoned")])
    const runtime = schedulerRuntime([job])

    const whileLocked = await runOn(runtime, "gated-abandoned")
    // A process that dies closes its connection, and PostgreSQL releases its locks.
    await otherProcess.end()
    const afterRelease = await runOn(runtime, "gated-abandoned")
    const rows = await jobRuns("gated-abandoned")

    expect(whileLocked).toBe("already running")
    expect(afterRelease).toMatchObject({ outcome: "succeeded" })
    expect(rows.map((row) => [row["outcome"], row["error"]])).toEqual([
      ["failed", "abandoned: the process running it stopped before the run ended"],
      ["succeeded", null]
    ])
  })

  it("lists runs newest first in pages", async () => {
    const job = defineJob({
      name: "paged",
      description: "affects one row",
      schedule: Schedule.spaced("1 hour"),
      run: () => Effect.succeed(1)
    })
    const runtime = schedulerRuntime([job])
    const runIds: Array<string> = []
    for (let index = 0; index < 3; index++) {
      const result = await runOn(runtime, "paged")
      if (result !== "already running") runIds.push(result.runId)
    }

    const pages = await runtime.runPromise(Effect.gen(function*() {
      const scheduler = yield* Scheduler
      const first = yield* scheduler.listRuns({ limit: 2 })
      const second = yield* scheduler.listRuns({ limit: 2, before: first.at(-1)?.id })
      return { first, second }
    }))

    const newest = [...runIds].reverse()
    expect(newest).toHaveLength(3)
    expect(pages.first.map((run) => run.id)).toEqual(newest.slice(0, 2))
    expect(pages.second[0]?.id).toBe(newest[2])
    expect(pages.first[0]).toMatchObject({ job: "paged", trigger: "manual", outcome: "succeeded", rowsAffected: 1 })
  })

  it("runs every job of the service's table", async () => {
    const runtime = track(ManagedRuntime.make(
      Scheduler.layer.pipe(
        Layer.provide(Layer.mergeAll(ConsentExpiry.layer, Rollup.layer)),
        Layer.provide(appSqlLayer(database)),
        Layer.provideMerge(captureLogs)
      )
    ))

    const results = [await runOn(runtime, "rollup"), await runOn(runtime, "purge"), await runOn(runtime, "consent")]

    expect(results).toMatchObject([{ outcome: "succeeded" }, { outcome: "succeeded" }, { outcome: "succeeded" }])
    expect(JOBS.map((job) => job.name)).toEqual(["rollup", "purge", "consent"])
  })

  it("removes credentials and keys from error texts", () => {
    expect(redactError("password=abc123 failed")).toBe("password=[redacted] failed")
    expect(redactError("key pk_abcdefgh12345 rejected")).toBe("key pk_[redacted] rejected")
    expect(redactError("x".repeat(600))).toHaveLength(500)
  })
})

describe("jobs over HTTP", () => {
  const ADMIN_KEY = "sk_jobs_test_admin_key_0123456789"
  const INGEST_KEY = "pk_jobs_test_ingest_key_012345678"
  let serviceDatabase: TestDatabase
  let service: ServiceProcess

  const post = (name: string, key = ADMIN_KEY) =>
    fetch(`${service.baseUrl}/v1/admin/jobs/${name}/run`, { method: "POST", headers: { "x-api-key": key } })
  const get = (query = "", key = ADMIN_KEY) =>
    fetch(`${service.baseUrl}/v1/admin/jobs/runs${query}`, { headers: { "x-api-key": key } })
  const serviceOwner = (text: string, values?: ReadonlyArray<unknown>) =>
    ownerRows(serviceDatabase.url, text, values)
  const waitForRunsToEnd = () =>
    waitUntil("every run to end", async () =>
      (await serviceOwner("SELECT count(*)::int AS n FROM job_runs WHERE outcome = 'running'"))[0]?.["n"] === 0)

  beforeAll(async () => {
    serviceDatabase = await createTestDatabase()
    service = await startService({
      env: {
        DATABASE_URL: Redacted.value(serviceDatabase.url).href,
        IP_HASH_PEPPER: TEST_PEPPER,
        ADMIN_API_KEY: ADMIN_KEY,
        INGEST_API_KEY: INGEST_KEY
      }
    })
  })

  afterAll(async () => {
    await service?.stop()
  })

  it("returns 404 for an unknown job", async () => {
    const response = await post("no-such-job")

    expect(response.status).toBe(404)
    expect(await response.json()).toMatchObject({ error: { code: "job_not_found" } })
  })

  it("starts once for two concurrent requests", async () => {
    // An old event whose row lock the test holds keeps the purge in its first
    // batch, so the first run is still going when the second request arrives.
    const [tenant] = await serviceOwner("SELECT tenant_id, id FROM properties LIMIT 1")
    const [visitor] = await serviceOwner(
      `INSERT INTO visitors (tenant_id, property_id, anon_id, first_seen_at, last_seen_at)
       VALUES ($1, $2, 'http-old', now() - interval '200 days', now() - interval '200 days') RETURNING id`,
      [tenant?.["tenant_id"], tenant?.["id"]]
    )
    const [event] = await serviceOwner(
      `INSERT INTO events (tenant_id, property_id, visitor_id, session_id, event_type, path, "timestamp")
       VALUES ($1, $2, $3, uuidv7(), 'page_view', '/', now() - interval '200 days') RETURNING id`,
      [tenant?.["tenant_id"], tenant?.["id"], visitor?.["id"]]
    )
    const blocker = await ownerClient(serviceDatabase.url)
    await blocker.query("BEGIN")
    await blocker.query("SELECT id FROM events WHERE id = $1 FOR UPDATE", [event?.["id"]])

    const responses = await Promise.all([post("purge"), post("purge")])
    await blocker.query("ROLLBACK")
    await blocker.end()
    const bodies = await Promise.all(responses.map((response) => response.json()))
    await waitForRunsToEnd()
    const runs = await serviceOwner("SELECT id, outcome::text AS outcome FROM job_runs WHERE job = 'purge'")

    expect(responses.map((response) => response.status).sort()).toEqual([202, 409])
    const accepted = bodies[responses.findIndex((response) => response.status === 202)]
    const rejected = bodies[responses.findIndex((response) => response.status === 409)]
    expect(rejected).toMatchObject({ error: { code: "job_already_running" } })
    expect(runs).toEqual([{ id: pick(accepted, "runId"), outcome: "succeeded" }])
  })

  it("returns 409 while another process holds the lock", async () => {
    const otherProcess = await ownerClient(serviceDatabase.url)
    await otherProcess.query("SELECT pg_advisory_lock($1, $2)", [...jobLockKeys("consent")])

    const whileHeld = await post("consent")
    await otherProcess.end()
    const afterRelease = await post("consent")
    await waitForRunsToEnd()

    expect(whileHeld.status).toBe(409)
    expect(afterRelease.status).toBe(202)
    expect(await afterRelease.json()).toEqual({ runId: expect.any(String) })
  })

  it("lists runs newest first with paging", async () => {
    const first = await get("?limit=1")
    const firstBody: unknown = await first.json()
    const newestId = pick(firstBody, "runs", 0, "id")
    const second = await get(`?limit=1&before=${String(newestId)}`)
    const secondBody: unknown = await second.json()
    const all: unknown = await (await get()).json()
    const allRuns = pick(all, "runs")

    expect(first.status).toBe(200)
    expect(pick(firstBody, "runs")).toHaveLength(1)
    expect(pick(firstBody, "nextBefore")).toBe(newestId)
    expect(pick(firstBody, "runs", 0)).toEqual({
      id: expect.any(String),
      name: "consent",
      trigger: "manual",
      startedAt: expect.any(String),
      finishedAt: expect.any(String),
      outcome: "succeeded",
      rows: 0,
      error: null
    })
    expect(String(pick(secondBody, "runs", 0, "id")) < String(newestId)).toBe(true)
    expect(Array.isArray(allRuns) ? allRuns.map((run) => pick(run, "name")) : allRuns).toEqual(["consent", "purge"])
    expect(pick(all, "nextBefore")).toBeNull()
  })

  it.each([
    ["?limit=0", "limit", "invalid_limit"],
    ["?limit=101", "limit", "invalid_limit"],
    ["?limit=ten", "limit", "invalid_limit"],
    ["?before=not-a-uuid", "before", "invalid_run_id"]
  ])("rejects the runs query %s", async (query, path, code) => {
    const response = await get(query)

    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ error: { code: "invalid_request", fields: [{ path, code }] } })
  })

  it.each([
    ["no key", undefined, 401],
    ["an ingest key", INGEST_KEY, 403]
  ])("refuses %s on the job endpoints", async (_label, key, status) => {
    const headers: Record<string, string> = key === undefined ? {} : { "x-api-key": key }
    const run = await fetch(`${service.baseUrl}/v1/admin/jobs/purge/run`, { method: "POST", headers })
    const list = await fetch(`${service.baseUrl}/v1/admin/jobs/runs`, { headers })

    expect(run.status).toBe(status)
    expect(list.status).toBe(status)
  })
})
