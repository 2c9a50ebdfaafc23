/**
 * Ingest against a naive peer, and latency under an open-loop load.
 *
 * 1. Events per second with p99 under 50 ms, and CPU per 1,000 events, for
 *    the service and for a straightforward Fastify + `pg` service
 *    (bench/lib/naiveServer.ts: one INSERT per event plus a session upsert,
 *    pool of 10). Each is loaded closed-loop, one event per request, at a
 *    ladder of connection counts. Its figure is the best run whose p99 stays
 *    under 50 ms, measured again for the median of three. CPU counts the
 *    server's process and PostgreSQL, which both use.
 * 2. Accept latency at half the service's highest rate in step 1, open-loop
 *    (requests leave on a fixed schedule and latency runs from the scheduled
 *    time), for the service and for the bare `node:http` floor at the same
 *    rate.
 *
 * Everything runs on this machine over 127.0.0.1: the service on an embedded
 * PostgreSQL in a temporary folder, the naive peer on that same PostgreSQL
 * (its own tables), and the load generator in this process.
 *
 * Usage: npx node bench/baseline.ts [--quick] [--json FILE] [--cpu-prof DIR]
 *   --cpu-prof DIR  runs the service under `node --cpu-prof` and writes its
 *                   profile into DIR when it stops; leaves the docs alone
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import pg from "pg"
import { WRITE_LANES } from "../src/streams/EventWriter.ts"
import { loadCorpus, VisitorStream } from "./lib/corpus.ts"
import { runLoad } from "./lib/load.ts"
import { runOpenLoad } from "./lib/openLoad.ts"
import {
  clockTicksPerSecond,
  type FloorServer,
  machineBusyCpuSeconds,
  machineFacts,
  processCpuSeconds,
  processTreeCpuSeconds,
  startFloorServer,
  startPortPrinter
} from "./lib/processes.ts"
import { writeSection } from "./lib/sections.ts"
import { postgresPid, type RunningService, startService, superuserPassword } from "./lib/service.ts"
import { formatNumber, percentile, summarize } from "./lib/stats.ts"

const TESTDATA_DIR = new URL("../../shared/testdata/", import.meta.url)
const DOCS_FILE = fileURLToPath(new URL("../docs/benchmarks.md", import.meta.url))
const NAIVE_SCRIPT = fileURLToPath(new URL("./lib/naiveServer.ts", import.meta.url))
const INGEST_KEY = "pk_benchmarkIngestKey_000000000000000000000000"
const ADMIN_KEY = "sk_benchmarkAdminKey_0000000000000000000000000"
const SITE_ORIGIN = "https://www.example.com"
const P99_BOUND_MS = 50
const REQUEST_TIMEOUT_MS = 30_000

interface Plan {
  readonly ladder: ReadonlyArray<number>
  readonly stepMs: number
  readonly runMs: number
  readonly runs: number
  readonly openLoopMs: number
}
const FULL_PLAN: Plan = { ladder: [2, 4, 8, 16, 32, 64], stepMs: 4_000, runMs: 8_000, runs: 3, openLoopMs: 10_000 }
const QUICK_PLAN: Plan = { ladder: [16, 64], stepMs: 1_500, runMs: 2_000, runs: 1, openLoopMs: 2_000 }

type Target = "service" | "naive" | "floor"

interface ClosedRun {
  readonly target: Target
  readonly connections: number
  readonly eventsPerSecond: number
  readonly p99Ms: number
  readonly non202: number
  readonly serverCores: number
  readonly postgresCores: number
  readonly otherCores: number
  /** Server and PostgreSQL CPU per 1,000 accepted events, ms. */
  readonly cpuMsPer1000: number
}

interface OpenRun {
  readonly target: Target
  readonly rate: number
  readonly sent: number
  readonly accepted202: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly p999Ms: number
  readonly maxMs: number
  readonly lateSends: number
  /** Write transactions a second during the run, for the service. */
  readonly transactionsPerSecond: number | undefined
}

interface Targets {
  readonly service: RunningService
  readonly naive: FloorServer
  readonly floor: FloorServer
  readonly postgresPid: number
  readonly owner: pg.Client
}

const main = async () => {
  const { values } = parseArgs({
    options: { quick: { type: "boolean" }, json: { type: "string" }, "cpu-prof": { type: "string" } },
    strict: true
  })
  const profileDir = values["cpu-prof"]
  const quick = values.quick === true
  const plan = quick ? QUICK_PLAN : FULL_PLAN
  const began = performance.now()
  const corpus = loadCorpus(TESTDATA_DIR)
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "porchlight-bench-baseline-"))
  const started: Array<{ stop: () => Promise<unknown> }> = []
  const hardLimit = setTimeout(() => {
    console.error("bench/baseline.ts: the run exceeded 10 minutes; stopping")
    void Promise.all(started.map((child) => child.stop())).finally(() => process.exit(2))
  }, 10 * 60_000)
  try {
    const service = await startService({
      dataDir,
      startTimeoutMs: 120_000,
      env: {
        INGEST_API_KEY: INGEST_KEY,
        ADMIN_API_KEY: ADMIN_KEY,
        IP_HASH_PEPPER: "benchmark-ip-hash-pepper-0000000000000000000",
        CORS_ALLOWED_ORIGINS: SITE_ORIGIN,
        TRUST_PROXY: "fly",
        LOG_LEVEL: "info"
      },
      ...(profileDir === undefined ? {} : { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${Path.resolve(profileDir)}`] })
    })
    started.push(service)
    const superuser = `postgres://postgres:${encodeURIComponent(superuserPassword(dataDir))}@127.0.0.1:${service.postgresPort}/postgres`
    const naive = await startPortPrinter(NAIVE_SCRIPT, { DATABASE_URL: superuser })
    started.push(naive)
    const floor = await startFloorServer()
    started.push(floor)
    const owner = new pg.Client({ connectionString: superuser })
    await owner.connect()
    const targets: Targets = { service, naive, floor, postgresPid: postgresPid(dataDir), owner }

    let seed = 1
    const streams = (connections: number) =>
      Array.from({ length: connections }, () => new VisitorStream(corpus, INGEST_KEY, seed++, 16))

    const closed = async (target: Target, connections: number, durationMs: number): Promise<ClosedRun> => {
      const pool = streams(connections)
      const before = cpu(targets, target)
      const result = await runLoad({
        port: portOf(targets, target),
        path: "/v1/events",
        connections,
        durationMs,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        headers: { origin: SITE_ORIGIN },
        nextRequest: (worker) => pool[worker]!.nextRequest(1),
        readCounts: true
      })
      const after = cpu(targets, target)
      const seconds = (after.at - before.at) / 1000
      const server = after.server - before.server
      const postgres = after.postgres - before.postgres
      const own = after.own - before.own
      const run: ClosedRun = {
        target,
        connections,
        eventsPerSecond: result.acceptedEvents / (result.elapsedMs / 1000),
        p99Ms: percentile(result.latenciesMs, 99),
        non202: result.requests - result.accepted202,
        serverCores: server / seconds,
        postgresCores: postgres / seconds,
        otherCores: (after.machine - before.machine - server - postgres - own) / seconds,
        cpuMsPer1000: ((server + postgres) * 1_000_000) / Math.max(1, result.acceptedEvents)
      }
      say(`${target} ${connections} connections: ${formatNumber(run.eventsPerSecond)} events/s, p99 ${run.p99Ms.toFixed(1)} ms, non-202 ${run.non202}, server ${run.serverCores.toFixed(2)} cores, PostgreSQL ${run.postgresCores.toFixed(2)}, others ${run.otherCores.toFixed(2)}`)
      return run
    }

    // Step 1: the ladder, then repeated runs at the best level under the bound.
    await closed("service", 16, plan.stepMs)
    await closed("naive", 16, plan.stepMs)
    const ladders: Record<"service" | "naive", Array<ClosedRun>> = { service: [], naive: [] }
    const chosen: Record<"service" | "naive", Array<ClosedRun>> = { service: [], naive: [] }
    for (const target of ["service", "naive"] as const) {
      for (const connections of plan.ladder) ladders[target].push(await closed(target, connections, plan.stepMs))
    }
    const best = (target: "service" | "naive") => {
      const under = ladders[target].filter((run) => run.p99Ms < P99_BOUND_MS && run.non202 === 0)
      const pool = under.length > 0 ? under : ladders[target]
      return pool.reduce((a, b) => (b.eventsPerSecond > a.eventsPerSecond ? b : a))
    }
    const levels = { service: best("service").connections, naive: best("naive").connections }
    for (let run = 0; run < plan.runs; run++) {
      for (const target of ["service", "naive"] as const) {
        chosen[target].push(await closed(target, levels[target], plan.runMs))
      }
    }

    // Step 2: open loop at half the service's highest rate.
    const maxRate = Math.max(...ladders.service.map((run) => run.eventsPerSecond))
    const rate = Math.max(1, Math.round(maxRate / 2))
    const open = async (target: Target): Promise<OpenRun> => {
      let turn = 0
      const pool = streams(64)
      const xidBefore = target === "service" ? await nextXid(owner) : 0n
      const startedAt = performance.now()
      const result = await runOpenLoad({
        port: portOf(targets, target),
        path: "/v1/events",
        rate,
        durationMs: plan.openLoopMs,
        maxSockets: 256,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        headers: { origin: SITE_ORIGIN },
        nextRequest: () => pool[turn++ % pool.length]!.nextRequest(1)
      })
      const seconds = (performance.now() - startedAt) / 1000
      const transactions = target === "service" ? Number((await nextXid(owner)) - xidBefore) : undefined
      const run: OpenRun = {
        target,
        rate,
        sent: result.sent,
        accepted202: result.accepted202,
        p50Ms: percentile(result.latenciesMs, 50),
        p99Ms: percentile(result.latenciesMs, 99),
        p999Ms: percentile(result.latenciesMs, 99.9),
        maxMs: percentile(result.latenciesMs, 100),
        lateSends: result.lateSends,
        transactionsPerSecond: transactions === undefined ? undefined : transactions / seconds
      }
      say(`open loop ${target} at ${formatNumber(rate)}/s: p50 ${run.p50Ms.toFixed(1)} ms, p99 ${run.p99Ms.toFixed(1)}, p99.9 ${run.p999Ms.toFixed(1)}, max ${run.maxMs.toFixed(1)}, ${run.accepted202} of ${run.sent} answered 202, ${run.lateSends} sent late`)
      return run
    }
    const openRuns = [await open("service"), await open("floor")]

    const figures = summarizeAll(chosen, openRuns)
    say(`service ÷ naive events/s: ${figures.eventsRatio.toFixed(2)} (target at least 10); CPU per event: ${figures.cpuRatio.toFixed(2)} (target at most 0.2)`)
    if (values.json !== undefined) {
      Fs.writeFileSync(values.json, `${JSON.stringify({
        name: "baseline",
        ratios: {
          events_vs_naive: { value: figures.eventsRatio, better: "higher" },
          cpu_per_event_vs_naive: { value: figures.cpuRatio, better: "lower" }
        },
        figures
      }, null, 2)}\n`)
    }
    if (!quick && profileDir === undefined) {
      const version = await owner.query<{ version: string }>("SELECT version()")
      writeSection(DOCS_FILE, "baseline", render({
        plan,
        ladders,
        chosen,
        openRuns,
        figures,
        postgresVersion: version.rows[0]?.version ?? "unknown",
        wallSeconds: (performance.now() - began) / 1000
      }))
      say(`wrote the baseline section of ${DOCS_FILE}`)
    }
    await owner.end()
  } finally {
    clearTimeout(hardLimit)
    for (const child of started.reverse()) await child.stop()
    Fs.rmSync(dataDir, { recursive: true, force: true })
  }
}

const say = (line: string) => console.log(`[baseline] ${line}`)

const processOf = (targets: Targets, target: Target): { readonly pid: number; readonly port: number } => {
  if (target === "service") return targets.service
  if (target === "naive") return targets.naive
  return targets.floor
}

const portOf = (targets: Targets, target: Target) => processOf(targets, target).port

const ticks = clockTicksPerSecond()

const cpu = (targets: Targets, target: Target) => {
  const pid = processOf(targets, target).pid
  const own = process.cpuUsage()
  return {
    at: performance.now(),
    server: processCpuSeconds(pid, ticks),
    postgres: processTreeCpuSeconds(targets.postgresPid, ticks),
    own: (own.user + own.system) / 1_000_000,
    machine: machineBusyCpuSeconds(ticks)
  }
}

/** Reads the next transaction id; only writing transactions take one. */
const nextXid = async (owner: pg.Client): Promise<bigint> => {
  const result = await owner.query<{ xid: string }>("SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xid")
  return BigInt(result.rows[0]?.xid ?? "0")
}

interface Figures {
  readonly serviceEvents: number
  readonly naiveEvents: number
  readonly eventsRatio: number
  readonly serviceCpuMsPer1000: number
  readonly naiveCpuMsPer1000: number
  readonly cpuRatio: number
  readonly openRate: number
  readonly openServiceP99Ms: number
  readonly openServiceP999Ms: number
  readonly openFloorP99Ms: number
  readonly openFloorP999Ms: number
  /** One lane's time between flushes at the open-loop rate: lanes ÷ write transactions a second. */
  readonly flushIntervalMs: number
}

const summarizeAll = (
  chosen: Record<"service" | "naive", ReadonlyArray<ClosedRun>>,
  openRuns: ReadonlyArray<OpenRun>
): Figures => {
  const median = (runs: ReadonlyArray<ClosedRun>, figure: (run: ClosedRun) => number) => summarize(runs.map(figure)).median
  const serviceEvents = median(chosen.service, (run) => run.eventsPerSecond)
  const naiveEvents = median(chosen.naive, (run) => run.eventsPerSecond)
  const serviceCpu = median(chosen.service, (run) => run.cpuMsPer1000)
  const naiveCpu = median(chosen.naive, (run) => run.cpuMsPer1000)
  const service = openRuns.find((run) => run.target === "service")!
  const floor = openRuns.find((run) => run.target === "floor")!
  return {
    serviceEvents,
    naiveEvents,
    eventsRatio: serviceEvents / naiveEvents,
    serviceCpuMsPer1000: serviceCpu,
    naiveCpuMsPer1000: naiveCpu,
    cpuRatio: serviceCpu / naiveCpu,
    openRate: service.rate,
    openServiceP99Ms: service.p99Ms,
    openServiceP999Ms: service.p999Ms,
    openFloorP99Ms: floor.p99Ms,
    openFloorP999Ms: floor.p999Ms,
    flushIntervalMs: (WRITE_LANES * 1000) / (service.transactionsPerSecond ?? Number.NaN)
  }
}

interface Report {
  readonly plan: Plan
  readonly ladders: Record<"service" | "naive", ReadonlyArray<ClosedRun>>
  readonly chosen: Record<"service" | "naive", ReadonlyArray<ClosedRun>>
  readonly openRuns: ReadonlyArray<OpenRun>
  readonly figures: Figures
  readonly postgresVersion: string
  readonly wallSeconds: number
}

const render = (report: Report): string => {
  const machine = machineFacts()
  const { figures } = report
  const closedRow = (run: ClosedRun) =>
    `| ${run.target} | ${run.connections} | ${formatNumber(run.eventsPerSecond)} | ${run.p99Ms.toFixed(1)} | ${run.non202} | ${run.serverCores.toFixed(2)} | ${run.postgresCores.toFixed(2)} | ${formatNumber(run.cpuMsPer1000, 1)} | ${run.otherCores.toFixed(2)} |`
  const closedHeader = "| target | connections | events/s | p99, ms | non-202 | server, cores | PostgreSQL, cores | CPU per 1,000 events, ms | other processes, cores |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  const openRow = (run: OpenRun) =>
    `| ${run.target} | ${formatNumber(run.rate)} | ${formatNumber(run.sent)} | ${formatNumber(run.accepted202)} | ${run.p50Ms.toFixed(1)} | ${run.p99Ms.toFixed(1)} | ${run.p999Ms.toFixed(1)} | ${run.maxMs.toFixed(1)} | ${run.lateSends} |`
  const meets = (ok: boolean) => (ok ? "met" : "missed")
  return `## Ingest against a naive peer, and open-loop latency

Command: \`npx node bench/baseline.ts\`

Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; the whole run took ${report.wallSeconds.toFixed(0)} s.

Machine: ${machine.cores} cores, ${machine.cpuModel}, ${machine.memoryGiB.toFixed(1)} GiB, ${machine.kernel}, Node ${process.version}. ${report.postgresVersion}, embedded, default settings.

### What runs

- The service (\`node src/main.ts\`) on its embedded PostgreSQL, loaded as in the ingest benchmark: the same traffic, one event per request, keep-alive, no pipelining, over 127.0.0.1.
- The naive peer (\`bench/lib/naiveServer.ts\`): Fastify 5 and \`pg\` with a pool of 10; for each event a session upsert and an INSERT, each its own transaction, then 202. It uses the same PostgreSQL, in tables of its own.
- Events per second under the p99 bound: each target is loaded closed-loop at ${report.plan.ladder.join(", ")} connections for ${report.plan.stepMs / 1000} s each; the connection count with the most events per second and p99 under ${P99_BOUND_MS} ms is run ${report.plan.runs} more times for ${report.plan.runMs / 1000} s, alternating with the other target, and the medians are reported. CPU counts the server's process and PostgreSQL's processes.
- Open loop: ${formatNumber(figures.openRate)} requests a second, half the highest rate the service reached in its ladder, for ${report.plan.openLoopMs / 1000} s, to the service and then to the bare \`node:http\` floor. Latency runs from each request's scheduled time, so time spent waiting for a free socket counts.

### Results

| figure | service | naive peer | ratio | target |
| --- | --- | --- | --- | --- |
| events/s with p99 under ${P99_BOUND_MS} ms (median) | ${formatNumber(figures.serviceEvents)} | ${formatNumber(figures.naiveEvents)} | ${figures.eventsRatio.toFixed(2)} | at least 10: ${meets(figures.eventsRatio >= 10)} |
| server and PostgreSQL CPU per 1,000 events, ms | ${formatNumber(figures.serviceCpuMsPer1000, 1)} | ${formatNumber(figures.naiveCpuMsPer1000, 1)} | ${figures.cpuRatio.toFixed(2)} | at most 0.2: ${meets(figures.cpuRatio <= 0.2)} |

| open loop at ${formatNumber(figures.openRate)}/s | service | floor | target |
| --- | --- | --- | --- |
| p99, ms | ${figures.openServiceP99Ms.toFixed(1)} | ${figures.openFloorP99Ms.toFixed(1)} | at most the flush interval (${figures.flushIntervalMs.toFixed(1)} ms) plus 10: ${meets(figures.openServiceP99Ms <= figures.flushIntervalMs + 10)} |
| p99.9, ms | ${figures.openServiceP999Ms.toFixed(1)} | ${figures.openFloorP999Ms.toFixed(1)} | under 100: ${meets(figures.openServiceP999Ms < 100)} |

The writer has no flush timer: a lane starts its next flush when the previous one commits. The flush interval above is one lane's time between flushes at this rate: ${WRITE_LANES} lanes divided by the write transactions a second counted during the run.

### Every run

${closedHeader}
${[...report.ladders.service, ...report.ladders.naive].map(closedRow).join("\n")}

Repeated at the chosen connection counts (service ${report.chosen.service[0]?.connections}, naive peer ${report.chosen.naive[0]?.connections}):

${closedHeader}
${[...report.chosen.service, ...report.chosen.naive].map(closedRow).join("\n")}

| open loop | rate | sent | 202 | p50, ms | p99, ms | p99.9, ms | max, ms | sent late |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${report.openRuns.map(openRow).join("\n")}
`
}

await main()
