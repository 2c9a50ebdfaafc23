/**
 * The lead benchmark's phases: each loads one server for a while, with the
 * CPU and database readings around it, and the probe that chooses the
 * connection count.
 */
import type pg from "pg"
import type { FloorServer } from "./processes.ts"
import { LEAD_FLOOR_TABLE } from "./leadFloor.ts"
import { runLeadLoad } from "./leadLoad.ts"
import {
  cpuSnapshot,
  type CpuSnapshot,
  databaseCounters,
  otherCores,
  type ProcessIds,
  waitForQuietMachine
} from "./leadMeasure.ts"
import { resetPgStatStatements, startWaitSampler, statementsPerCapture, type WaitSampler } from "./leadPgStats.ts"
import type { PhaseFigures, PhaseKind, RequestPathFigures, Target } from "./leadsRecord.ts"
import { type LeadTraffic, storeSeededVisitors } from "./leadTraffic.ts"
import type { RunningService } from "./service.ts"
import { formatNumber, percentile } from "./stats.ts"

/** Connection counts that the probe of a full run compares. */
export const PROBE_CONNECTIONS = [16, 32, 64] as const
/** More connections are used only when they capture at least this much more on both servers. */
const MIN_GAIN_FOR_MORE_CONNECTIONS = 1.1
const REQUEST_TIMEOUT_MS = 30_000
/** The phase that loads the service with leads it rejects before any SQL. */
const REQUEST_PATH_MS = 3_000
/** Seeded visitors stored before a service phase: this many times its expected captures. */
const SEED_MARGIN = 1.5
/** Other processes' CPU, in cores, below which the machine counts as quiet enough to measure. */
export const QUIET_CORES = 0.2
const QUIET_SAMPLE_MS = 250
/** Other processes' CPU during a measured run, in cores, from which the run is repeated while repeats are left. */
export const CONTENDED_CORES = 0.25

export interface Plan {
  readonly warmupMs: number
  /** Zero skips the probe. */
  readonly probeMs: number
  readonly runMs: number
  readonly runs: number
  readonly quietBudgetMs: number
  readonly maxRepeats: number
  /** The whole script stops with exit code 2 when it runs longer than this. */
  readonly hardLimitMs: number
}


export interface Bench {
  readonly plan: Plan
  readonly ids: ProcessIds
  readonly service: RunningService
  readonly floor: FloorServer
  readonly owner: pg.Client
  /** The `Origin` header of every request, an origin that the service allows. */
  readonly siteOrigin: string
  readonly connectOwner: () => Promise<pg.Client>
  readonly pgStats: boolean
  readonly property: { readonly tenantId: string; readonly propertyId: string }
  readonly traffic: Readonly<Record<Target, LeadTraffic>>
  readonly acknowledged: Readonly<Record<Target, Array<{ emailNormalized: string; anonId: string }>>>
  /** The highest service rate measured so far, to size the seeding. */
  serviceRate: number
  quietBudgetMs: number
  repeatsLeft: number
}

/**
 * Stores the visitors that the next phase's leads come from, before its
 * measurement starts: enough for SEED_MARGIN times the highest rate seen.
 * The floor's visitors are planned too but not stored, so that both
 * servers' bodies cost the load generator the same.
 */
const prepareVisitors = async (bench: Bench, target: Target, durationMs: number) => {
  const traffic = bench.traffic[target]
  const needed = Math.ceil(bench.serviceRate * SEED_MARGIN * (durationMs / 1000)) - traffic.waitingVisitors
  if (needed <= 0) return
  const planned = traffic.planVisitors(needed)
  if (target === "service") await storeSeededVisitors(bench.owner, bench.property, planned)
}

/** Runs one phase of load against one server and turns it into figures. */
export const measure = async (
  bench: Bench,
  target: Target,
  connections: number,
  durationMs: number,
  kind: PhaseKind,
  label: string
): Promise<PhaseFigures> => {
  await prepareVisitors(bench, target, durationMs)
  const quiet = kind === "warm-up" ? undefined : await waitForQuiet(bench)
  const profiled = bench.pgStats && target === "service" && kind === "run"
  if (profiled) await resetPgStatStatements(bench.owner)
  const waits = profiled ? startWaitSampler(bench.connectOwner) : undefined
  const databaseBefore = await databaseCounters(bench.owner, LEAD_FLOOR_TABLE)
  const before = cpuSnapshot(bench.ids)
  const result = await runLeadLoad({
    port: target === "service" ? bench.service.port : bench.floor.port,
    connections,
    durationMs,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    headers: { origin: bench.siteOrigin },
    nextLead: () => bench.traffic[target].nextLead(),
    onAcknowledged: (lead) => bench.acknowledged[target].push({ emailNormalized: lead.emailNormalized, anonId: lead.anonId })
  })
  const after = cpuSnapshot(bench.ids)
  const databaseAfter = await databaseCounters(bench.owner, LEAD_FLOOR_TABLE)
  if (profiled) await printPgStats(bench, label, waits, result.created201 + result.known200)
  if (!bench.service.isRunning()) {
    throw new Error(`the service exited during ${target} ${label}:\n${bench.service.log().recent.join("\n")}`)
  }

  const isService = target === "service"
  const server = (snapshot: CpuSnapshot) => isService ? snapshot.service : snapshot.floor
  const serverMainThread = (snapshot: CpuSnapshot) => isService ? snapshot.serviceMainThread : snapshot.floorMainThread
  const seconds = result.elapsedMs / 1000
  const windowSeconds = (after.at - before.at) / 1000
  const cores = (from: number, to: number) => (to - from) / windowSeconds
  const acknowledged = result.created201 + result.known200
  const perCapture = (from: number, to: number) => ((to - from) * 1000) / Math.max(1, acknowledged)
  const rate = acknowledged / seconds
  if (isService && kind !== "warm-up") bench.serviceRate = Math.max(bench.serviceRate, rate)
  const figures: PhaseFigures = {
    target,
    kind,
    label,
    connections,
    elapsedSeconds: seconds,
    requests: result.requests,
    created201: result.created201,
    known200: result.known200,
    failed: result.requests - acknowledged,
    failures: result.failures,
    capturesPerSecond: rate,
    p50Ms: percentile(result.latenciesMs, 50),
    p99Ms: percentile(result.latenciesMs, 99),
    maxMs: percentile(result.latenciesMs, 100),
    socketsOpened: result.socketsOpened,
    minBodyBytes: result.minBodyBytes,
    maxBodyBytes: result.maxBodyBytes,
    meanBodyBytes: result.bodyBytes / Math.max(1, result.requests),
    cores: {
      server: cores(server(before), server(after)),
      serverMainThread: cores(serverMainThread(before), serverMainThread(after)),
      postgres: cores(before.postgres, after.postgres),
      loadGenerator: cores(before.loadGenerator, after.loadGenerator),
      machine: cores(before.machine, after.machine),
      others: otherCores(before, after)
    },
    othersBeforeRun: quiet,
    serverCpuMsPerCapture: perCapture(server(before), server(after)),
    postgresCpuMsPerCapture: perCapture(before.postgres, after.postgres),
    rowsAdded: isService
      ? databaseAfter.leads - databaseBefore.leads
      : databaseAfter.floorRows - databaseBefore.floorRows,
    transactions: Number(databaseAfter.nextXid - databaseBefore.nextXid),
    walBytes: Number(databaseAfter.walPosition - databaseBefore.walPosition),
    walSyncs: databaseAfter.walSyncs - databaseBefore.walSyncs,
    autovacuumRuns: databaseAfter.autovacuumRuns - databaseBefore.autovacuumRuns,
    jobRuns: databaseAfter.jobRuns - databaseBefore.jobRuns
  }
  say(describePhase(figures))
  return figures
}

const waitForQuiet = async (bench: Bench): Promise<number> => {
  const { others, waitedMs } = await waitForQuietMachine(bench.ids, {
    quietCores: QUIET_CORES,
    sampleMs: QUIET_SAMPLE_MS,
    budgetMs: Math.max(QUIET_SAMPLE_MS, bench.quietBudgetMs)
  })
  bench.quietBudgetMs -= waitedMs - QUIET_SAMPLE_MS
  return others
}

/**
 * Measures a probe or run and adds it to `phases`. While repeats are left,
 * a phase during which other processes used CONTENDED_CORES or more is kept
 * as "repeated" and measured again. Returns the figures that count.
 */
export const measureUncontended = async (
  bench: Bench,
  phases: Array<PhaseFigures>,
  target: Target,
  connections: number,
  durationMs: number,
  kind: "probe" | "run",
  label: string
): Promise<PhaseFigures> => {
  let figures = await measure(bench, target, connections, durationMs, kind, label)
  while (figures.cores.others >= CONTENDED_CORES && bench.repeatsLeft > 0) {
    bench.repeatsLeft--
    say(`repeating ${target} ${label}: other processes used ${formatNumber(figures.cores.others, 2)} cores during it`)
    phases.push({ ...figures, kind: "repeated", label: `${label}, repeated` })
    figures = await measure(bench, target, connections, durationMs, kind, label)
  }
  phases.push(figures)
  return figures
}

/**
 * Probes each connection count on both servers and keeps the smallest one
 * past which twice the connections capture less than
 * MIN_GAIN_FOR_MORE_CONNECTIONS times more on both servers. From there the
 * wait for commits is hidden behind other connections' work, and more
 * connections only lengthen the queues.
 */
export const probeConnections = async (bench: Bench, phases: Array<PhaseFigures>) => {
  const probes: Array<{ connections: number; service: PhaseFigures; floor: PhaseFigures }> = []
  for (const connections of PROBE_CONNECTIONS) {
    const label = `probe ${connections}`
    const service = await measureUncontended(bench, phases, "service", connections, bench.plan.probeMs, "probe", label)
    const floor = await measureUncontended(bench, phases, "floor", connections, bench.plan.probeMs, "probe", label)
    probes.push({ connections, service, floor })
  }
  let chosen = probes[probes.length - 1]
  for (let index = 0; index + 1 < probes.length; index++) {
    const current = probes[index]
    const next = probes[index + 1]
    if (current === undefined || next === undefined) continue
    const gain = Math.max(
      next.service.capturesPerSecond / current.service.capturesPerSecond,
      next.floor.capturesPerSecond / current.floor.capturesPerSecond
    )
    if (gain < MIN_GAIN_FOR_MORE_CONNECTIONS) {
      chosen = current
      break
    }
  }
  if (chosen === undefined) throw new Error("no probe ran")
  const listing = probes.map((probe) =>
    `${probe.connections} connections: service ${formatNumber(probe.service.capturesPerSecond)}/s ` +
    `(p99 ${formatNumber(probe.service.p99Ms, 1)} ms), floor ${formatNumber(probe.floor.capturesPerSecond)}/s ` +
    `(p99 ${formatNumber(probe.floor.p99Ms, 1)} ms)`
  ).join("; ")
  const reason = `Probe of ${bench.plan.probeMs / 1000} s per server and count: ${listing}. The runs use ` +
    `${chosen.connections} connections, the smallest count past which doubling them gained less than ` +
    `${formatNumber((MIN_GAIN_FOR_MORE_CONNECTIONS - 1) * 100)}% on both servers` +
    `${chosen === probes[probes.length - 1] ? " (or the largest probed, since every doubling gained more)" : ""}.`
  return { connections: chosen.connections, reason }
}

/**
 * Loads the service with leads that fail validation (a `formName` with a
 * space), which it rejects with 400 after the key check, parsing, the email
 * parse and the per-IP rate limit, and before any SQL. Their CPU per
 * request estimates the service's cost per capture outside the database:
 * a capture skips the 400 response but adds the email rate limit and a
 * JSON response.
 */
export const measureRequestPath = async (bench: Bench, connections: number): Promise<RequestPathFigures> => {
  const invalidLead = () => {
    const lead = bench.traffic.service.nextLead()
    return { ...lead, body: lead.body.replace('"formName":"contact-sales"', '"formName":"contact sales"') }
  }
  await waitForQuiet(bench)
  const before = cpuSnapshot(bench.ids)
  const result = await runLeadLoad({
    port: bench.service.port,
    connections,
    durationMs: REQUEST_PATH_MS,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    headers: { origin: bench.siteOrigin },
    nextLead: invalidLead,
    onAcknowledged: () => undefined
  })
  const after = cpuSnapshot(bench.ids)
  const rejected = result.failures.get("400 invalid_lead") ?? 0
  const perRequest = (from: number, to: number) => ((to - from) * 1000) / Math.max(1, result.requests)
  const figures: RequestPathFigures = {
    connections,
    elapsedSeconds: result.elapsedMs / 1000,
    requestsPerSecond: result.requests / (result.elapsedMs / 1000),
    rejected400: rejected,
    otherOutcomes: result.requests - rejected,
    serviceCpuMsPerRequest: perRequest(before.service, after.service),
    loadGeneratorCpuMsPerRequest: perRequest(before.loadGenerator, after.loadGenerator),
    otherCores: otherCores(before, after)
  }
  say(`service without SQL (leads rejected with 400): ${formatNumber(figures.requestsPerSecond)} requests/s, ` +
    `${formatNumber(figures.serviceCpuMsPerRequest, 3)} ms of service CPU per request, ` +
    `${formatNumber(figures.otherOutcomes)} requests not answered 400`)
  return figures
}

const printPgStats = async (
  bench: Bench,
  label: string,
  waits: WaitSampler | undefined,
  captures: number
) => {
  const states = await waits?.stop() ?? []
  say(`pg_stat_statements, service ${label}, ${formatNumber(captures)} captures:`)
  for (const line of await statementsPerCapture(bench.owner, captures)) say(`  ${line}`)
  say(`the service's database connections during ${label}:`)
  for (const { state, share } of states.slice(0, 10)) say(`  ${formatNumber(share * 100, 1)}% ${state}`)
}

const describePhase = (run: PhaseFigures): string =>
  `${run.target} ${run.label} (${run.connections} connections, ${formatNumber(run.elapsedSeconds, 1)} s): ` +
  `${formatNumber(run.capturesPerSecond)} captures/s, p50 ${formatNumber(run.p50Ms, 1)} ms, ` +
  `p99 ${formatNumber(run.p99Ms, 1)} ms, failed ${formatNumber(run.failed)}, ` +
  `server ${formatNumber(run.cores.server, 2)} cores, PostgreSQL ${formatNumber(run.cores.postgres, 2)}, ` +
  `load generator ${formatNumber(run.cores.loadGenerator, 2)}, other processes ${formatNumber(run.cores.others, 2)}, ` +
  `${formatNumber(run.transactions / Math.max(1, run.created201 + run.known200), 2)} transactions and ` +
  `${formatNumber(run.walSyncs)} WAL flushes`

export const say = (line: string) => process.stdout.write(`[bench] ${line}\n`)
