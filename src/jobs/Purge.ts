/**
 * Retention purge. For every tenant, deletes the rows that are past their
 * retention window at `now`:
 *
 * - `events` whose `timestamp` is more than 90 days before `now`;
 * - `sessions` whose `last_event_at` is more than 90 days before `now`
 *   (their visitors and leads are kept);
 * - `event_receipts` whose `received_at` is more than 24 hours before `now`;
 * - `ingest_rejections` whose `received_at` is more than 90 days before `now`;
 * - `auth_sessions` whose `expires_at` is before `now`;
 * - `daily_metric_rollups`, `daily_ingest_rollups` and, once a migration
 *   creates it, `daily_visitors`, whose `day` is before the UTC date 24
 *   calendar months before `now`.
 *
 * "More than 90 days" counts 90 periods of 24 hours, so the cutoffs do not
 * depend on a time zone.
 *
 * Raw IP addresses are never stored: ingest and lead capture keep only an
 * HMAC of the address (`ip_hash`, `first_ip_hash`, `last_ip_hash`), so the
 * rule that raw IPs go after 7 days has nothing to delete here.
 *
 * Each statement deletes at most `batchSize` rows, oldest first, in its own
 * short transaction (through `TenantDb.withTenant`, so row-level security
 * limits it to one tenant), and the loop goes on until a batch comes back
 * short. No transaction therefore holds locks on more than one batch of
 * `events`. A table that fails for a tenant is logged and skipped, and the
 * purge goes on with the next table and tenant. Deleting what is already
 * gone changes nothing, so a second run with the same `now` deletes nothing.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { TenantDb } from "../services/TenantDb.ts"

export const PURGE_BATCH_SIZE = 5_000
/** Upper bound of batches per tenant and table in one run (five million rows); the next run takes the rest. */
export const MAX_BATCHES_PER_TABLE = 1_000

/** How long one batch may wait for a row lock, and how long its statement may run. */
const BATCH_LOCK_TIMEOUT = "5s"
const BATCH_STATEMENT_TIMEOUT = "60s"

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

export const PURGED_TABLES = [
  "events",
  "sessions",
  "event_receipts",
  "ingest_rejections",
  "auth_sessions",
  "daily_metric_rollups",
  "daily_ingest_rollups",
  "daily_visitors"
] as const

export type PurgedTable = (typeof PURGED_TABLES)[number]

/** One table's retention rule: rows whose `column` is before the cutoff are deleted. */
interface RetentionRule {
  readonly table: PurgedTable
  readonly column: string
  /**
   * Column that picks a batch's rows for the DELETE: `id`, or `ctid` for the
   * tables keyed by several columns. A ctid read by the sub-select is used in
   * the same statement, so it still names the same row version.
   */
  readonly rowKey: "id" | "ctid"
  /** A `timestamptz` cutoff as a Date, or a `date` cutoff as YYYY-MM-DD. */
  readonly cutoff: (now: Date) => Date | string
}

const daysBefore = (days: number) => (now: Date) => new Date(now.getTime() - days * DAY_MS)
const hoursBefore = (hours: number) => (now: Date) => new Date(now.getTime() - hours * HOUR_MS)
const monthsBefore = (months: number) => (now: Date) => utcDateMonthsBefore(now, months)

// Events go before their sessions, so no event outlives its session.
const RULES: ReadonlyArray<RetentionRule> = [
  { table: "events", column: "timestamp", rowKey: "id", cutoff: daysBefore(90) },
  { table: "sessions", column: "last_event_at", rowKey: "id", cutoff: daysBefore(90) },
  { table: "event_receipts", column: "received_at", rowKey: "ctid", cutoff: hoursBefore(24) },
  { table: "ingest_rejections", column: "received_at", rowKey: "id", cutoff: daysBefore(90) },
  { table: "auth_sessions", column: "expires_at", rowKey: "id", cutoff: (now) => now },
  { table: "daily_metric_rollups", column: "day", rowKey: "ctid", cutoff: monthsBefore(24) },
  { table: "daily_ingest_rollups", column: "day", rowKey: "ctid", cutoff: monthsBefore(24) },
  { table: "daily_visitors", column: "day", rowKey: "ctid", cutoff: monthsBefore(24) }
]

/** Tables that a later migration adds; the purge skips them until they exist. */
const OPTIONAL_TABLES: ReadonlySet<PurgedTable> = new Set(["daily_visitors"])

export interface PurgeOptions {
  /** Rows per DELETE statement; `PURGE_BATCH_SIZE` when absent. */
  readonly batchSize?: number
}

export interface PurgeReport {
  /** Rows deleted per table, over every tenant. */
  readonly deleted: Readonly<Record<PurgedTable, number>>
  readonly totalDeleted: number
  readonly tenants: number
  /** Tenant and table pairs that failed and were skipped. */
  readonly failures: number
}

/** Deletes every tenant's rows that are past their retention window at `now`. */
export const purgeExpired = (
  now: Date,
  options: PurgeOptions = {}
): Effect.Effect<PurgeReport, SqlError, SqlClient | TenantDb> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient
    const tenants = yield* TenantDb
    const batchSize = options.batchSize ?? PURGE_BATCH_SIZE
    const rules = yield* existingRules(sql)
    const tenantIds = yield* sql<{ readonly id: string }>`SELECT id FROM porchlight_tenant_ids() AS t(id)`

    const deleted = zeroCounts()
    let failures = 0
    for (const { id: tenantId } of tenantIds) {
      const tenantDeleted = zeroCounts()
      for (const rule of rules) {
        const cutoff = rule.cutoff(now)
        const deleteOneBatch = tenants.withTenant(
          tenantId,
          Effect.andThen(boundBatch(sql), deleteBatch(sql, rule, cutoff, batchSize))
        )
        const outcome = yield* Effect.result(purgeTable(deleteOneBatch, batchSize, (count) => {
          tenantDeleted[rule.table] += count
        }))
        if (outcome._tag === "Failure") {
          failures++
          yield* Effect.logWarning("retention purge failed for a table; skipped until the next run").pipe(
            Effect.annotateLogs({ tenantId, table: rule.table, error: outcome.failure.message })
          )
        } else if (outcome.success === "batch_limit") {
          yield* Effect.logWarning("retention purge stopped at the batch limit; the next run continues").pipe(
            Effect.annotateLogs({ tenantId, table: rule.table, maxBatches: MAX_BATCHES_PER_TABLE })
          )
        }
      }
      const tenantTotal = sum(tenantDeleted)
      if (tenantTotal > 0) {
        yield* Effect.logInfo("retention purge deleted rows").pipe(
          Effect.annotateLogs({ tenantId, deleted: tenantTotal, ...nonZero(tenantDeleted) })
        )
      }
      for (const table of PURGED_TABLES) deleted[table] += tenantDeleted[table]
    }
    return { deleted, totalDeleted: sum(deleted), tenants: tenantIds.length, failures }
  }).pipe(Effect.annotateLogs("service", "retention-purge"))

/**
 * Runs batches until one deletes fewer than `batchSize` rows, reporting each
 * committed batch's count as it goes, so that the counts stay right when a
 * later batch fails.
 */
const purgeTable = <E, R>(
  deleteOneBatch: Effect.Effect<number, E, R>,
  batchSize: number,
  onCommitted: (count: number) => void
): Effect.Effect<"done" | "batch_limit", E, R> =>
  Effect.gen(function*() {
    for (let batch = 0; batch < MAX_BATCHES_PER_TABLE; batch++) {
      const count = yield* deleteOneBatch
      onCommitted(count)
      if (count < batchSize) return "done" as const
    }
    return "batch_limit" as const
  })

/** Limits how long the batch's transaction may wait for a lock and run, for this transaction only. */
const boundBatch = (sql: SqlClient) =>
  sql`SELECT set_config('lock_timeout', ${BATCH_LOCK_TIMEOUT}, true),
             set_config('statement_timeout', ${BATCH_STATEMENT_TIMEOUT}, true)`

/**
 * Deletes up to `batchSize` expired rows, in no particular order: every row
 * past the cutoff goes in the end. Without an ORDER BY, the index on the
 * time column may be a BRIN index (events, sessions), which cannot return
 * rows in order.
 */
const deleteBatch = (sql: SqlClient, rule: RetentionRule, cutoff: Date | string, batchSize: number) =>
  Effect.map(
    sql<{ readonly n: number }>`
      WITH deleted AS (
        DELETE FROM ${sql(rule.table)}
        WHERE ${sql(rule.rowKey)} = ANY (ARRAY(
          SELECT ${sql(rule.rowKey)} FROM ${sql(rule.table)}
          WHERE ${sql(rule.column)} < ${cutoff}
          LIMIT ${batchSize}
        ))
        RETURNING 1
      )
      SELECT count(*)::int AS n FROM deleted`,
    (rows) => rows[0]?.n ?? 0
  )

/** The rules whose tables exist in this database. */
const existingRules = (sql: SqlClient) =>
  Effect.gen(function*() {
    const rules: Array<RetentionRule> = []
    for (const rule of RULES) {
      if (OPTIONAL_TABLES.has(rule.table)) {
        const rows = yield* sql<{ readonly present: boolean }>`
          SELECT to_regclass(${`public.${rule.table}`}) IS NOT NULL AS present`
        if (rows[0]?.present !== true) continue
      }
      rules.push(rule)
    }
    return rules
  })

/**
 * Returns the UTC calendar date `months` months before `now`, as YYYY-MM-DD. The day
 * of the month is clamped to the length of the target month, as PostgreSQL's
 * interval arithmetic does (2028-02-29 minus 24 months is 2026-02-28).
 */
export const utcDateMonthsBefore = (now: Date, months: number): string => {
  const monthIndex = now.getUTCFullYear() * 12 + now.getUTCMonth() - months
  const year = Math.floor(monthIndex / 12)
  const month = monthIndex - year * 12
  const daysInMonth = new Date(Date.UTC(year, month + 1, 0)).getUTCDate()
  const day = Math.min(now.getUTCDate(), daysInMonth)
  return `${String(year).padStart(4, "0")}-${String(month + 1).padStart(2, "0")}-${String(day).padStart(2, "0")}`
}

const zeroCounts = (): Record<PurgedTable, number> => ({
  events: 0,
  sessions: 0,
  event_receipts: 0,
  ingest_rejections: 0,
  auth_sessions: 0,
  daily_metric_rollups: 0,
  daily_ingest_rollups: 0,
  daily_visitors: 0
})

const sum = (counts: Readonly<Record<PurgedTable, number>>) =>
  PURGED_TABLES.reduce((total, table) => total + counts[table], 0)

const nonZero = (counts: Readonly<Record<PurgedTable, number>>) =>
  Object.fromEntries(PURGED_TABLES.filter((table) => counts[table] > 0).map((table) => [table, counts[table]]))
