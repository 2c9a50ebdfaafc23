/**
 * PostgreSQL's side of a lead benchmark profile (`--pg-stats`). It reports
 * the time that pg_stat_statements measures per statement, planning and the
 * foreign-key checks that run inside a statement included. It also samples
 * what the service's database connections wait for during a run.
 *
 * pg_stat_statements must be loaded when PostgreSQL starts, so the
 * benchmark sets `shared_preload_libraries` and restarts the service on the
 * same DATA_DIR. Its timing adds to PostgreSQL's CPU, so the figures of a
 * run with `--pg-stats` are not comparable with those of a plain run.
 */
import type pg from "pg"

const WAIT_SAMPLE_MS = 10
const STATEMENTS_SHOWN = 12

/** Makes the next start of PostgreSQL load pg_stat_statements and time planning and nested statements. */
export const preloadPgStatStatements = async (owner: pg.Client) => {
  await owner.query("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
  await owner.query("ALTER SYSTEM SET pg_stat_statements.track = 'all'")
  await owner.query("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
}

export const resetPgStatStatements = async (owner: pg.Client) => {
  await owner.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
  await owner.query("SELECT pg_stat_statements_reset()")
}

export interface WaitSampler {
  /** Stops sampling and returns each state and wait event with its share of the samples. */
  readonly stop: () => Promise<ReadonlyArray<{ readonly state: string; readonly share: number }>>
}

/**
 * Samples `pg_stat_activity` every WAIT_SAMPLE_MS on its own connection:
 * the state and wait event of each of the service's connections, which the
 * service names `porchlight`.
 */
export const startWaitSampler = (connect: () => Promise<pg.Client>): WaitSampler => {
  const counts = new Map<string, number>()
  let running = true
  const done = (async () => {
    const client = await connect()
    try {
      while (running) {
        const result = await client.query<{ state: string }>(
          `SELECT coalesce(state, 'unknown') || ', ' || coalesce(wait_event_type || ':' || wait_event, 'no wait') AS state
           FROM pg_stat_activity WHERE application_name = 'porchlight'`
        )
        for (const row of result.rows) counts.set(row.state, (counts.get(row.state) ?? 0) + 1)
        await new Promise((resolve) => setTimeout(resolve, WAIT_SAMPLE_MS))
      }
    } finally {
      await client.end()
    }
  })()
  return {
    stop: async () => {
      running = false
      await done
      const total = [...counts.values()].reduce((sum, count) => sum + count, 0)
      return [...counts].sort((a, b) => b[1] - a[1]).map(([state, count]) => ({ state, share: count / Math.max(1, total) }))
    }
  }
}

/** Returns the statements that took the most time, per capture, as lines of text. */
export const statementsPerCapture = async (owner: pg.Client, captures: number): Promise<ReadonlyArray<string>> => {
  const result = await owner.query<{ calls: string; plan: number; exec: number; blocks: string; query: string }>(
    `SELECT calls::text, total_plan_time AS plan, total_exec_time AS exec, shared_blks_hit::text AS blocks,
            left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS query
     FROM pg_stat_statements
     WHERE query NOT LIKE '%pg_stat_%'
     ORDER BY total_plan_time + total_exec_time DESC
     LIMIT ${STATEMENTS_SHOWN}`
  )
  const per = (value: number) => (value / Math.max(1, captures)).toFixed(3)
  return result.rows.map((row) =>
    `${per(Number(row.calls))} calls, plan ${per(row.plan)} ms, execute ${per(row.exec)} ms, ` +
    `${per(Number(row.blocks))} buffer hits per capture: ${row.query}`
  )
}
