/**
 * Runs the real service (`node src/main.ts`) as a child process on an
 * embedded PostgreSQL under a temporary DATA_DIR, listening on 127.0.0.1,
 * and keeps the log lines that a benchmark reports: warnings and errors,
 * and the last lines for a failure message.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { stopChild } from "./processes.ts"

const MAIN = fileURLToPath(new URL("../../src/main.ts", import.meta.url))
const RECENT_LINES = 20
const KEPT_PROBLEM_LINES = 50
/** Time for the drain at SIGTERM: the writer's buffer, then PostgreSQL's own stop. */
const STOP_TIMEOUT_MS = 60_000

export interface ServiceOptions {
  readonly dataDir: string
  /** Variables besides PATH, HOME, HOST, PORT, DATA_DIR and EMBEDDED_PG_PORT, which this module sets. */
  readonly env: Readonly<Record<string, string>>
  readonly startTimeoutMs: number
  /** Extra Node.js flags for the service, such as `--cpu-prof`. */
  readonly nodeArgs?: ReadonlyArray<string>
}

export interface ServiceLog {
  /** Log lines at level warn, error or fatal, the first KEPT_PROBLEM_LINES of them. */
  readonly problems: ReadonlyArray<string>
  readonly problemCount: number
  readonly recent: ReadonlyArray<string>
  /** `leftBuffered` of the "ingest writer drained" line logged at shutdown, when there was one. */
  readonly leftBufferedAtShutdown: number | undefined
}

export interface RunningService {
  readonly pid: number
  readonly port: number
  readonly postgresPort: number
  readonly dataDir: string
  readonly isRunning: () => boolean
  readonly log: () => ServiceLog
  /** Sends SIGTERM and waits for the exit; the service stops its PostgreSQL before it exits. */
  readonly stop: () => Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Starts the service and waits for its "service started" log line. */
export const startService = async (options: ServiceOptions): Promise<RunningService> => {
  const port = await freePort()
  const postgresPort = await freePort()
  const env: Record<string, string> = {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: process.env["HOME"] ?? "/tmp",
    ...options.env,
    HOST: "127.0.0.1",
    PORT: String(port),
    DATA_DIR: options.dataDir,
    EMBEDDED_PG_PORT: String(postgresPort)
  }
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), MAIN], { env, stdio: ["ignore", "pipe", "pipe"] })
  if (child.pid === undefined) throw new Error(`could not start ${MAIN}`)
  const pid = child.pid
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }))
  })
  const state = watchLog(child)
  const service: RunningService = {
    pid,
    port,
    postgresPort,
    dataDir: options.dataDir,
    isRunning: () => child.exitCode === null && child.signalCode === null,
    log: () => ({
      problems: [...state.problems],
      problemCount: state.problemCount,
      recent: [...state.recent],
      leftBufferedAtShutdown: state.leftBufferedAtShutdown
    }),
    stop: async () => {
      await stopChild(child, STOP_TIMEOUT_MS)
      return exited
    }
  }
  const deadline = Date.now() + options.startTimeoutMs
  while (!state.started) {
    if (!service.isRunning()) {
      throw new Error(`the service exited before it started:\n${state.recent.join("\n")}`)
    }
    if (Date.now() > deadline) {
      await service.stop()
      throw new Error(`the service did not start within ${options.startTimeoutMs} ms:\n${state.recent.join("\n")}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return service
}

interface LogState {
  started: boolean
  problemCount: number
  leftBufferedAtShutdown: number | undefined
  readonly problems: Array<string>
  readonly recent: Array<string>
}

const PROBLEM_LEVELS = new Set(["warn", "error", "fatal"])

const watchLog = (child: ChildProcess): LogState => {
  const state: LogState = { started: false, problemCount: 0, leftBufferedAtShutdown: undefined, problems: [], recent: [] }
  let buffered = ""
  const onLine = (line: string) => {
    state.recent.push(line)
    if (state.recent.length > RECENT_LINES) state.recent.shift()
    const entry = parseJsonObject(line)
    if (entry === undefined) return
    if (entry["msg"] === "service started") state.started = true
    if (entry["msg"] === "ingest writer drained" && typeof entry["leftBuffered"] === "number") {
      state.leftBufferedAtShutdown = entry["leftBuffered"]
    }
    if (typeof entry["level"] === "string" && PROBLEM_LEVELS.has(entry["level"])) {
      state.problemCount++
      if (state.problems.length < KEPT_PROBLEM_LINES) state.problems.push(line)
    }
  }
  const onData = (chunk: Buffer) => {
    buffered += chunk.toString("utf8")
    const parts = buffered.split("\n")
    buffered = parts.pop() ?? ""
    for (const part of parts) if (part.trim() !== "") onLine(part)
  }
  child.stdout?.on("data", onData)
  child.stderr?.on("data", onData)
  return state
}

const parseJsonObject = (line: string): Record<string, unknown> | undefined => {
  if (!line.startsWith("{")) return undefined
  try {
    const value: unknown = JSON.parse(line)
    return typeof value === "object" && value !== null ? Object.fromEntries(Object.entries(value)) : undefined
  } catch {
    return undefined
  }
}

/** Reads the pid of the embedded PostgreSQL's postmaster from DATA_DIR/postgres/postmaster.pid. */
export const postgresPid = (dataDir: string): number => {
  const file = Path.join(dataDir, "postgres", "postmaster.pid")
  const pid = Number(Fs.readFileSync(file, "utf8").split("\n")[0])
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`invalid pid in ${file}`)
  return pid
}

/** Reads the embedded superuser's password, which the service keeps in DATA_DIR/secrets.json. */
export const superuserPassword = (dataDir: string): string => {
  const parsed: unknown = JSON.parse(Fs.readFileSync(Path.join(dataDir, "secrets.json"), "utf8"))
  if (typeof parsed === "object" && parsed !== null && "superuserPassword" in parsed &&
    typeof parsed.superuserPassword === "string") {
    return parsed.superuserPassword
  }
  throw new Error(`${dataDir}/secrets.json has no superuserPassword string`)
}

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
