/**
 * Lead capture benchmark for `POST /v1/leads/capture`: lead captures per
 * second, each committed before its response, against a floor that runs a
 * bare single-row insert in a transaction per request. It starts the real
 * service on an embedded PostgreSQL in a temporary DATA_DIR and the floor
 * server on the same PostgreSQL. It loads them in turn over loopback with
 * the same contact-form bodies, then checks that every acknowledged lead is
 * stored. A full run writes its section of docs/benchmarks.md.
 *
 * Usage: npx node bench/leads.ts [--quick] [--json FILE] [--cpu-prof DIR] [--pg-stats]
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import pg from "pg"
import { loadCorpus } from "./lib/corpus.ts"
import { createLeadFloorTable, LEAD_FLOOR_TABLE, startLeadFloor } from "./lib/leadFloor.ts"
import { databaseFacts } from "./lib/leadMeasure.ts"
import { preloadPgStatStatements } from "./lib/leadPgStats.ts"
import {
  type Bench,
  CONTENDED_CORES,
  measure,
  measureRequestPath,
  measureUncontended,
  type Plan,
  probeConnections,
  QUIET_CORES,
  say
} from "./lib/leadPhases.ts"
import type { LeadsRecord, PhaseFigures } from "./lib/leadsRecord.ts"
import { renderConsole, renderJson, renderMarkdown } from "./lib/leadsReport.ts"
import { verifyLeads } from "./lib/leadsVerify.ts"
import { loadLeadTestData, LeadTraffic } from "./lib/leadTraffic.ts"
import { clockTicksPerSecond, type FloorServer, machineFacts } from "./lib/processes.ts"
import { writeSection } from "./lib/sections.ts"
import { postgresPid, type RunningService, startService, superuserPassword } from "./lib/service.ts"
import { formatNumber } from "./lib/stats.ts"

const USAGE = `Usage: npx node bench/leads.ts [--quick] [--json FILE] [--cpu-prof DIR] [--pg-stats]

Loads POST /v1/leads/capture of a service that this script starts on an
embedded PostgreSQL in a temporary folder, and a bare node:http server that
inserts one row per request into the same PostgreSQL, over 127.0.0.1 only.

  --quick          one 4 s run per server after a short warm-up, with no
                   connection probe; leaves docs/benchmarks.md unchanged
  --json FILE      write the ratio and the figures to FILE as JSON
  --cpu-prof DIR   run the service with --cpu-prof and write its profile
                   to DIR when it stops
  --pg-stats       load pg_stat_statements (restarting the service once)
                   and print, after each measured service run, the time
                   per capture of each statement and what the service's
                   database connections waited for; adds to PostgreSQL's
                   CPU, so compare its figures only with each other
  --help           show this text`

const TESTDATA_DIR = new URL("../../shared/testdata/", import.meta.url)
const CONTACT_PAGE = new URL("../static/dist/contact.html", import.meta.url)
const DOCS_FILE = fileURLToPath(new URL("../docs/benchmarks.md", import.meta.url))
const REPOSITORY = fileURLToPath(new URL("..", import.meta.url))

// Fixed keys and pepper: the service and its database live only as long as the run.
const INGEST_KEY = "pk_benchmarkLeadsKey_0000000000000000000000000"
const ADMIN_KEY = "sk_benchmarkLeadsAdminKey_00000000000000000000"
const IP_HASH_PEPPER = "benchmark-ip-hash-pepper-0000000000000000000"
const SITE_HOST = "www.example.com"
const SITE_ORIGIN = `https://${SITE_HOST}`

/** Database connections of the service's pool and of the floor's: the service's default. */
const POOL_SIZE = 10
/** HTTP connections when no probe chooses them (quick mode). */
const DEFAULT_CONNECTIONS = 32
const SERVICE_START_TIMEOUT_MS = 60_000
/** The captures per second expected before any was measured, to size the first seeding. */
const FIRST_RATE_GUESS = 1_500

const FULL_PLAN: Plan = {
  warmupMs: 3_000,
  probeMs: 3_000,
  runMs: 8_000,
  runs: 3,
  quietBudgetMs: 30_000,
  maxRepeats: 4,
  hardLimitMs: 300_000
}
const QUICK_PLAN: Plan = {
  warmupMs: 1_500,
  probeMs: 0,
  runMs: 4_000,
  runs: 1,
  quietBudgetMs: 1_000,
  maxRepeats: 0,
  hardLimitMs: 60_000
}

interface Options {
  readonly quick: boolean
  readonly jsonFile: string | undefined
  readonly cpuProfileDir: string | undefined
  readonly pgStats: boolean
}


const main = async () => {
  const options = parseArguments(process.argv.slice(2))
  if (options === undefined) return
  const plan = options.quick ? QUICK_PLAN : FULL_PLAN
  const startedAt = new Date()
  const started = performance.now()
  const corpus = loadCorpus(TESTDATA_DIR)
  const testData = loadLeadTestData(TESTDATA_DIR, CONTACT_PAGE)
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "porchlight-bench-leads-"))
  const cleanup = new Cleanup(dataDir)
  const hardLimit = setTimeout(() => {
    process.stderr.write(`the benchmark ran longer than ${plan.hardLimitMs / 1000} s; stopping it\n`)
    void cleanup.run().finally(() => process.exit(2))
  }, plan.hardLimitMs)
  // Stop the service, its PostgreSQL and the floor server whatever ends this
  // process, short of SIGKILL, so that none of them is left running.
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
    process.once(signal, () => {
      void cleanup.run().finally(() => process.exit(code))
    })
  }
  process.once("uncaughtException", (error) => {
    process.stderr.write(`benchmark failed: ${error.stack ?? String(error)}\n`)
    void cleanup.run().finally(() => process.exit(1))
  })
  process.stdout.on("error", () => undefined)

  try {
    say(`starting the service on an embedded PostgreSQL in ${dataDir}`)
    const serviceStarted = performance.now()
    let service = await startBenchService(dataDir, options)
    cleanup.service = service
    const serviceStartSeconds = (performance.now() - serviceStarted) / 1000
    const password = superuserPassword(dataDir)
    const connectOwner = async () => {
      const client = new pg.Client({
        host: "127.0.0.1",
        port: service.postgresPort,
        user: "postgres",
        password,
        database: "postgres"
      })
      await client.connect()
      return client
    }
    let owner = await connectOwner()
    cleanup.owner = owner
    if (options.pgStats) {
      say("restarting the service with pg_stat_statements loaded")
      await preloadPgStatStatements(owner)
      await owner.end()
      await service.stop()
      service = await startBenchService(dataDir, options)
      cleanup.service = service
      owner = await connectOwner()
      cleanup.owner = owner
    }
    await createLeadFloorTable(owner)
    const floor = await startLeadFloor({ postgresPort: service.postgresPort, superuserPassword: password, poolSize: POOL_SIZE })
    cleanup.floor = floor
    const ticks = clockTicksPerSecond()
    const trafficOf = (seed: number) =>
      new LeadTraffic({ corpus, data: testData, ingestKey: INGEST_KEY, ipHashPepper: IP_HASH_PEPPER, siteHost: SITE_HOST, seed })
    const bench: Bench = {
      plan,
      ids: { ticks, service: service.pid, floor: floor.pid, postgres: postgresPid(dataDir) },
      service,
      floor,
      owner,
      siteOrigin: SITE_ORIGIN,
      connectOwner,
      pgStats: options.pgStats,
      property: await bootstrapProperty(owner),
      traffic: { service: trafficOf(1), floor: trafficOf(2) },
      acknowledged: { service: [], floor: [] },
      serviceRate: FIRST_RATE_GUESS,
      quietBudgetMs: plan.quietBudgetMs,
      repeatsLeft: plan.maxRepeats
    }
    const database = await databaseFacts(owner, dataDir)
    say(`service pid ${service.pid} on port ${service.port} (started in ${formatNumber(serviceStartSeconds, 1)} s), ` +
      `PostgreSQL pid ${bench.ids.postgres}, floor pid ${floor.pid} on port ${floor.port}`)

    const phases: Array<PhaseFigures> = []
    const warmupConnections = DEFAULT_CONNECTIONS
    phases.push(await measure(bench, "service", warmupConnections, plan.warmupMs, "warm-up", "warm-up"))
    phases.push(await measure(bench, "floor", warmupConnections, plan.warmupMs, "warm-up", "warm-up"))
    const choice = plan.probeMs > 0 ? await probeConnections(bench, phases) : {
      connections: DEFAULT_CONNECTIONS,
      reason: `Quick mode skips the probe and uses ${DEFAULT_CONNECTIONS} connections.`
    }
    say(choice.reason)
    for (let run = 1; run <= plan.runs; run++) {
      for (const target of ["service", "floor"] as const) {
        await measureUncontended(bench, phases, target, choice.connections, plan.runMs, "run", `run ${run}`)
      }
    }
    // Read before the phase below, whose requests also take seeded visitors.
    const unseededLeads = bench.traffic.service.unseededLeads
    const requestPath = plan.probeMs > 0 ? await measureRequestPath(bench, choice.connections) : undefined

    say("checking that every acknowledged lead is stored")
    const verification = await verifyLeads(owner, LEAD_FLOOR_TABLE, testData.consentText, bench.acknowledged)
    await owner.end()
    cleanup.owner = undefined
    // The floor first: the service stops the PostgreSQL that the floor's pool is connected to.
    await floor.stop()
    cleanup.floor = undefined
    const shutdown = await service.stop()
    cleanup.service = undefined
    const log = service.log()

    const record: LeadsRecord = {
      command: commandLine(options),
      quick: options.quick,
      startedAt,
      wallSeconds: (performance.now() - started) / 1000,
      serviceStartSeconds,
      code: codeVersion(),
      machine: machineFacts(),
      database,
      poolSize: POOL_SIZE,
      connections: choice.connections,
      connectionReason: choice.reason,
      quietCores: QUIET_CORES,
      contendedCores: CONTENDED_CORES,
      maxRepeats: plan.maxRepeats,
      emailTemplates: testData.emailTemplates.length,
      unseededLeads,
      requestPath,
      phases,
      verification,
      shutdown: { code: shutdown.code, signal: shutdown.signal },
      serviceProblems: { count: log.problemCount, lines: log.problems }
    }
    process.stdout.write(`\n${renderConsole(record)}\n\n`)
    if (options.jsonFile !== undefined) {
      Fs.writeFileSync(options.jsonFile, `${JSON.stringify(renderJson(record), null, 2)}\n`)
      say(`wrote ${options.jsonFile}`)
    }
    if (options.quick) {
      say("quick mode: docs/benchmarks.md left unchanged")
    } else {
      writeSection(DOCS_FILE, "leads", renderMarkdown(record))
      say(`wrote the leads section of ${DOCS_FILE}`)
    }
    if (verification.service.missing > 0 || verification.floor.missing > 0 || log.problemCount > 0) process.exitCode = 1
  } finally {
    clearTimeout(hardLimit)
    await cleanup.run()
  }
}

/** Reads the arguments, or prints the usage and returns undefined. */
const parseArguments = (args: ReadonlyArray<string>): Options | undefined => {
  if (args.includes("--help")) {
    process.stdout.write(`${USAGE}\n`)
    return undefined
  }
  let quick = false
  let pgStats = false
  let jsonFile: string | undefined
  let cpuProfileDir: string | undefined
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]
    if (arg === "--quick") {
      quick = true
    } else if (arg === "--pg-stats") {
      pgStats = true
    } else if ((arg === "--json" || arg === "--cpu-prof") && args[index + 1] !== undefined) {
      index++
      if (arg === "--json") jsonFile = args[index]
      else cpuProfileDir = args[index]
    } else {
      process.stderr.write(
        `invalid argument ${arg ?? ""}: expected --quick, --json FILE, --cpu-prof DIR or --pg-stats\n\n${USAGE}\n`
      )
      process.exitCode = 1
      return undefined
    }
  }
  return { quick, jsonFile, cpuProfileDir, pgStats }
}

const commandLine = (options: Options) =>
  ["npx node bench/leads.ts", options.quick ? "--quick" : "", options.jsonFile === undefined ? "" : "--json FILE",
    options.cpuProfileDir === undefined ? "" : "--cpu-prof DIR", options.pgStats ? "--pg-stats" : ""].filter((part) => part !== "").join(" ")

/**
 * Reads the checked-out commit and the paths under src/ and migrations/ that
 * differ from it, from git; outside a git checkout the commit is "unknown".
 */
const codeVersion = (): { commit: string; uncommitted: ReadonlyArray<string> } => {
  const git = (...args: Array<string>) =>
    execFileSync("git", args, { cwd: REPOSITORY, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
  try {
    const status = git("status", "--porcelain", "--", "src", "migrations")
    return {
      commit: git("rev-parse", "--short", "HEAD").trim(),
      uncommitted: status.split("\n").filter((line) => line.trim() !== "").map((line) => line.slice(3))
    }
  } catch {
    return { commit: "unknown (not a git checkout)", uncommitted: [] }
  }
}

/** Stops the processes that the run started and removes the temporary DATA_DIR; later calls do nothing. */
class Cleanup {
  service: RunningService | undefined
  floor: FloorServer | undefined
  owner: pg.Client | undefined
  private readonly dataDir: string
  private done = false

  constructor(dataDir: string) {
    this.dataDir = dataDir
  }

  async run() {
    if (this.done) return
    this.done = true
    await this.owner?.end().catch(() => undefined)
    if (this.floor !== undefined) await this.floor.stop()
    if (this.service !== undefined) await this.service.stop()
    Fs.rmSync(this.dataDir, { recursive: true, force: true })
  }
}

const startBenchService = (dataDir: string, options: Options) =>
  startService({
    dataDir,
    startTimeoutMs: SERVICE_START_TIMEOUT_MS,
    env: {
      INGEST_API_KEY: INGEST_KEY,
      ADMIN_API_KEY: ADMIN_KEY,
      IP_HASH_PEPPER,
      CORS_ALLOWED_ORIGINS: SITE_ORIGIN,
      TRUST_PROXY: "fly",
      DATABASE_POOL_SIZE: String(POOL_SIZE),
      LOG_LEVEL: "info"
    },
    ...(options.cpuProfileDir === undefined
      ? {}
      : { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${Path.resolve(options.cpuProfileDir)}`] })
  })

/** Reads the bootstrap tenant's `default` property, which the ingest key belongs to. */
const bootstrapProperty = async (owner: pg.Client) => {
  const result = await owner.query<{ tenant_id: string; id: string }>(
    "SELECT tenant_id, id FROM properties WHERE slug = 'default'"
  )
  const row = result.rows[0]
  if (row === undefined || result.rows.length !== 1) {
    throw new Error(`expected one bootstrap property named default, found ${result.rows.length}`)
  }
  return { tenantId: row.tenant_id, propertyId: row.id }
}


await main()
