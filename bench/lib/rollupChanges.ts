/**
 * The record of the rollup's performance work, for the `### Changes`
 * subsection of the benchmark's docs section: the figures of this benchmark
 * before the work, and each profile finding with the change it led to. The
 * figures after the work are those of the current run.
 */

/** A figure of the run before the changes, as the docs table prints it. */
export interface EarlierFigure {
  readonly name: string
  readonly value: string
}

/**
 * `npx node bench/rollup.ts` on 2026-12-04 on the machine of the current
 * record, with `src/jobs/Rollup.ts` as of commit 1eed8b7 and this
 * benchmark's corpus.
 */
export const BEFORE: ReadonlyArray<EarlierFigure> = [
  { name: "full run, ms", value: "94,938 (89,923–100,553)" },
  { name: "floor, ms", value: "6,740 (6,027–6,789)" },
  { name: "full run / floor", value: "14.09" },
  { name: "incremental run, ms", value: "3,251 (3,073–3,771)" },
  { name: "incremental run / full run", value: "0.034" }
]

/** Time per step of that full run, in ms, median of 3 (min–max). */
export const BEFORE_STEPS: ReadonlyArray<EarlierFigure> = [
  { name: "`daily_visitors` rows", value: "35,142 (33,951–37,060)" },
  { name: "path rows", value: "34,707 (32,173–36,188)" },
  { name: "total row", value: "11,434 (10,947–12,306)" },
  { name: "source, referrer, keyword, country and device rows", value: "10,939 (10,279–12,269)" },
  { name: "ingest row", value: "1,624 (1,599–1,706)" },
  { name: "reading the invariant figures", value: "731 (684–736)" }
]

export interface RollupChange {
  /** The observation in `EXPLAIN (ANALYZE, BUFFERS)` of one day. */
  readonly finding: string
  readonly change: string
}

/** Findings on 2026-03-21 of this corpus: 334,627 events, 49,823 counted sessions, 47,810 visitors. */
export const CHANGES: ReadonlyArray<RollupChange> = [
  {
    finding:
      "The path rows built a hash of all 1,538,424 sessions of the property (114 MB) every day, to read the conversion flag of the day's 49,823 entrances: 1.2 s of the statement's 1.9 s.",
    change: "Each entrance looks up its own session by key, once, inside the events pass."
  },
  {
    finding:
      "The `daily_visitors` rows joined the day's visitors with a sequential scan of all 600,000 visitors, and the foreign key to `tenants` ran one check query per inserted row: 608 ms for 47,810 rows, 39% of the statement.",
    change:
      "The day's visitors are looked up by key in visitor order. Migration 0008 replaces the tenant foreign keys of `daily_visitors` and `daily_metric_rollups` with one check per statement and a delete trigger on `tenants`."
  },
  {
    finding:
      "The day's events were read five times: for the visitors, the path rows, twice for the total row and once for the ingest row. The 95th percentile of TTFB sorted all 334,627 events, nulls included.",
    change:
      "One scan groups the events per (visitor, path) and per TTFB value in one `GROUPING SETS` aggregate, and the path, visitor, total and ingest rows come from that aggregate in one statement. The percentile reads the 10,843 distinct TTFB values with their counts."
  },
  {
    finding:
      "The breakdown rows expanded each counted session into five rows and hashed 185,503 (dimension, value, visitor) groups: 448 ms.",
    change:
      "Sessions of visitors with one session that day count one visitor per value and are grouped per value alone, in small hash tables. Only the sessions of repeat visitors are grouped per (value, visitor)."
  }
]

/**
 * The costs that keep the full run above twice the floor: the backend CPU
 * time of each part of the events pass, run as separate statements on the
 * last day of the 10,000,000-event corpus on the same machine.
 */
export const BOUNDS = `The target of at most 2 times the floor is not met. Per day, the floor's share is about 210 ms, and a \`GROUP BY path\` of the day's events through the time index takes 90 ms. The rollup's events pass needs about 700 ms to aggregate the day's events into 244,194 (visitor, path) and TTFB groups, a hash table of 50 MB where the floor has 2,000 groups. About 200 ms of that are the 49,823 entrance lookups. It then looks up the 47,810 visitors for their first visit in 290 ms. A hash join with all 600,000 visitors takes 170 ms, but its cost grows with the visitors table instead of the day. Inserting their 47,810 \`daily_visitors\` rows takes 120 ms when the day is new and 220 ms when it replaces the day's rows. The exact per-path unique visitors and one row per visitor and day thus cost about 5 times the floor's share on their own. Meeting 2 times the floor would take a different design. Ingest could keep each day's visitors and (path, visitor) pairs up to date as events arrive, so that the rollup counts them instead of recomputing them from the events. A day's visitors could also be stored as one array or bitmap row instead of one row each.`
