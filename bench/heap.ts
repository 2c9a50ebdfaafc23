/**
 * Heap benchmark: retained heap per active visitor in the visitor actors,
 * against a floor that keeps the same fields as plain objects in a Map.
 *
 * It starts an embedded PostgreSQL in a temporary folder, because the
 * actors' layer reloads open sessions from the database when it is built.
 * Each run then starts two child processes, one after the other, each on
 * this Node binary with `--expose-gc`:
 * - `bench/lib/heapActors.ts` sends every visitor's requests through the
 *   real steps up to `VisitorActors.track` and dumps the final states;
 * - `bench/lib/heapFloor.ts` parses that dump into a Map of flat objects.
 * Each child reads the heap after forced full collections before and after
 * its build, so a figure is the growth of the heap divided by the visitors.
 *
 * Usage:
 *   npx node bench/heap.ts                     100,000 visitors, 3 runs; writes docs/benchmarks.md
 *   npx node bench/heap.ts --quick --json FILE 10,000 visitors, 1 run; writes FILE only
 *   --heap-snapshot DIR                        also writes heap snapshots of each actor child
 *                                              before and after its build into DIR, and leaves
 *                                              the docs alone
 */
import { Effect, Exit, Redacted, References, Scope } from "effect"
import { execFileSync, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { startEmbeddedPostgres } from "../src/services/EmbeddedPostgres.ts"
import { runMigrations } from "../src/services/Migrations.ts"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { type ChildResult, isChildResult } from "./lib/heapProbe.ts"
import { type HeapRecord, jsonRecord, renderConsole, renderSection } from "./lib/heapReport.ts"
import { writeSection } from "./lib/sections.ts"
import { machineFacts, stopChild } from "./lib/processes.ts"
import { freePort } from "./lib/service.ts"

const DOCS_FILE = fileURLToPath(new URL("../docs/benchmarks.md", import.meta.url))
const ACTORS_SCRIPT = fileURLToPath(new URL("./lib/heapActors.ts", import.meta.url))
const FLOOR_SCRIPT = fileURLToPath(new URL("./lib/heapFloor.ts", import.meta.url))
const REPOSITORY = fileURLToPath(new URL("..", import.meta.url))

interface Mode {
  readonly visitors: number
  readonly runs: number
  /** Each child is killed when it runs longer than this. */
  readonly childTimeoutMs: number
  /** The whole benchmark stops with an error when it runs longer than this. */
  readonly runLimitMs: number
}

const FULL: Mode = { visitors: 100_000, runs: 3, childTimeoutMs: 5 * 60_000, runLimitMs: 20 * 60_000 }
const QUICK: Mode = { visitors: 10_000, runs: 1, childTimeoutMs: 60_000, runLimitMs: 2 * 60_000 }
/** Seed of the traffic mix. Run `n` uses SEED + n, so the runs draw different visitors from the same mix. */
const SEED = 7_001

type Run = { readonly actors: ChildResult; readonly floor: ChildResult }

const main = async () => {
  const { values: options } = parseArgs({
    options: { quick: { type: "boolean" }, json: { type: "string" }, "heap-snapshot": { type: "string" } }
  })
  const quick = options.quick === true
  const mode = quick ? QUICK : FULL
  const snapshotDir = options["heap-snapshot"] === undefined ? undefined : Path.resolve(options["heap-snapshot"])
  const began = performance.now()
  const watchdog = setTimeout(() => {
    console.error(`bench/heap.ts: timed out after ${mode.runLimitMs / 1000} s`)
    process.exit(1)
  }, mode.runLimitMs)
  watchdog.unref()

  const runs = await measureAll(mode, snapshotDir, began)
  const record: HeapRecord = {
    command: quick ? `npx node bench/heap.ts --quick --json ${options.json ?? "FILE"}` : "npx node bench/heap.ts",
    date: new Date(),
    elapsedSeconds: (performance.now() - began) / 1000,
    commit: gitCommit(),
    machine: machineFacts(),
    visitors: mode.visitors,
    runs
  }
  console.log(renderConsole(record))
  if (options.json !== undefined) Fs.writeFileSync(options.json, `${JSON.stringify(jsonRecord(record), null, 2)}\n`)
  // A snapshot taken between the two readings changes the second one, so such a run is not recorded.
  if (!quick && snapshotDir === undefined) writeSection(DOCS_FILE, "heap", renderSection(record))
  clearTimeout(watchdog)
}

/** Starts PostgreSQL in temporary folders, runs every measured run, and removes the folders. */
const measureAll = async (mode: Mode, snapshotDir: string | undefined, began: number): Promise<ReadonlyArray<Run>> => {
  if (snapshotDir !== undefined) Fs.mkdirSync(snapshotDir, { recursive: true })
  const workDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "porchlight-bench-heap-"))
  // A folder of its own, because PostgreSQL may run as another system user that cannot enter workDir.
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "porchlight-bench-heap-pg-"))
  const scope = Effect.runSync(Scope.make())
  try {
    const cluster = await Effect.runPromise(
      startEmbeddedPostgres({
        dataDir,
        port: await freePort(),
        superuserPassword: Redacted.make(randomBytes(18).toString("base64url"))
      }).pipe(Scope.provide(scope), quietLogs)
    )
    const databaseUrl = await prepareDatabase(Redacted.value(cluster.ownerUrl))
    console.log(`PostgreSQL ready (${secondsSince(began)} s since start)`)

    const runs: Array<Run> = []
    for (let run = 1; run <= mode.runs; run++) {
      const snapshotPrefix = snapshotDir === undefined ? undefined : Path.join(snapshotDir, `run-${run}`)
      const measured = await measureRun(mode, run, databaseUrl, workDir, snapshotPrefix)
      runs.push(measured)
      console.log(
        `run ${run} of ${mode.runs}: built ${mode.visitors} visitors in ${measured.actors.buildSeconds.toFixed(1)} s ` +
          `(actors) and ${measured.floor.buildSeconds.toFixed(1)} s (floor), ${secondsSince(began)} s since start`
      )
    }
    return runs
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void).pipe(quietLogs))
    Fs.rmSync(workDir, { recursive: true, force: true })
    Fs.rmSync(dataDir, { recursive: true, force: true })
  }
}

/** Creates the benchmark's database with the current schema and returns the owner's URL of it. */
const prepareDatabase = async (clusterUrl: URL): Promise<URL> => {
  await Effect.runPromise(withOwnerClient(Redacted.make(clusterUrl), (client) =>
    ownerQuery(client, "CREATE DATABASE porchlight_bench")).pipe(quietLogs))
  const databaseUrl = new URL(clusterUrl.href)
  databaseUrl.pathname = "/porchlight_bench"
  await Effect.runPromise(runMigrations(Redacted.make(databaseUrl)).pipe(quietLogs))
  return databaseUrl
}

/** Runs the actor child and then the floor child on the states it dumped. */
const measureRun = async (
  mode: Mode,
  run: number,
  databaseUrl: URL,
  workDir: string,
  snapshotPrefix: string | undefined
): Promise<Run> => {
  const dump = Path.join(workDir, `states-${run}.ndjson`)
  const visitors = String(mode.visitors)
  const snapshotArgs = snapshotPrefix === undefined ? [] : ["--heap-snapshot", snapshotPrefix]
  const actorArgs = ["--visitors", visitors, "--seed", String(SEED + run), "--dump", dump, ...snapshotArgs]
  const actors = await runChild(ACTORS_SCRIPT, actorArgs, {
    DATABASE_URL: databaseUrl.href,
    IP_HASH_PEPPER: randomBytes(32).toString("base64url")
  }, workDir, mode.childTimeoutMs)
  const floor = await runChild(FLOOR_SCRIPT, ["--visitors", visitors, "--dump", dump], {}, workDir, mode.childTimeoutMs)
  Fs.rmSync(dump, { force: true })
  if (actors.mapSize !== mode.visitors) {
    throw new Error(`the actors' Map contains ${actors.mapSize} visitors after the run, expected ${mode.visitors}`)
  }
  return { actors, floor }
}

/** Starts a child on this Node binary with `--expose-gc`, waits for its exit and reads its result file. */
const runChild = (
  script: string,
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>>,
  workDir: string,
  timeoutMs: number
): Promise<ChildResult> => {
  const resultFile = Path.join(workDir, `result-${Path.basename(script, ".ts")}.json`)
  Fs.rmSync(resultFile, { force: true })
  const child = spawn(process.execPath, ["--expose-gc", script, ...args, "--result", resultFile], {
    cwd: REPOSITORY,
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: process.env["HOME"] ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const output: Array<string> = []
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => output.push(chunk))
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => output.push(chunk))
  return new Promise((resolve, reject) => {
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      void stopChild(child, 1_000)
    }, timeoutMs)
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      const name = Path.basename(script)
      if (timedOut) {
        reject(new Error(`${name} ran longer than ${timeoutMs / 1000} s and was stopped`))
      } else if (code !== 0) {
        reject(new Error(`${name} exited with code ${code}, signal ${signal}:\n${output.join("").slice(-4_000)}`))
      } else {
        readChildResult(resultFile).then(resolve, reject)
      }
    })
  })
}

const readChildResult = async (file: string): Promise<ChildResult> => {
  const parsed: unknown = JSON.parse(await Fs.promises.readFile(file, "utf8"))
  if (!isChildResult(parsed)) throw new Error(`invalid child result in ${file}`)
  return parsed
}

const secondsSince = (start: number) => ((performance.now() - start) / 1000).toFixed(1)

/** Keeps the setup's info lines (migrations applied, PostgreSQL started) out of the benchmark's output. */
const quietLogs = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provideService(effect, References.MinimumLogLevel, "Warn")

const gitCommit = () => {
  const git = (...args: Array<string>) =>
    execFileSync("git", args, { cwd: REPOSITORY, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  try {
    const dirty = git("status", "--porcelain", "--", "src", "bench") !== ""
    return `${git("rev-parse", "--short", "HEAD")}${dirty ? ", with uncommitted changes in `src/` or `bench/`" : ""}`
  } catch {
    return "unknown (not a git checkout)"
  }
}

await main()
