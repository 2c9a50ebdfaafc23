/**
 * Runs the real service (`node src/main.ts`) as a child process, the way an
 * operator starts it, and reads its JSON log lines.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { freePort } from "./ports.ts"

const MAIN = fileURLToPath(new URL("../../src/main.ts", import.meta.url))

export interface ServiceProcess {
  readonly child: ChildProcess
  readonly port: number
  readonly baseUrl: string
  readonly dataDir: string
  /** Every stdout line so far, JSON log lines parsed. */
  readonly lines: Array<string>
  readonly logs: () => ReadonlyArray<Record<string, unknown>>
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly stop: (signal?: NodeJS.Signals) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export interface StartOptions {
  readonly env?: Readonly<Record<string, string>>
  readonly dataDir?: string
  /** Resolve as soon as the process exits instead of waiting for "service started". */
  readonly expectExit?: boolean
  readonly timeoutMs?: number
}

export const makeDataDir = () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "porchlight-test-"))

/** Starts the service and waits until it logs "service started" (or exits). */
export const startService = async (options: StartOptions = {}): Promise<ServiceProcess> => {
  const port = await freePort()
  const dataDir = options.dataDir ?? makeDataDir()
  const env: Record<string, string> = {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: process.env["HOME"] ?? "/tmp",
    HOST: "127.0.0.1",
    PORT: String(port),
    DATA_DIR: dataDir,
    EMBEDDED_PG_PORT: String(await freePort()),
    ...options.env
  }
  const child = spawn(process.execPath, [MAIN], { env, stdio: ["ignore", "pipe", "pipe"] })
  const lines: Array<string> = []
  let buffered = ""
  const onData = (chunk: Buffer) => {
    buffered += chunk.toString("utf8")
    const parts = buffered.split("\n")
    buffered = parts.pop() ?? ""
    lines.push(...parts.filter((line) => line.trim() !== ""))
  }
  child.stdout?.on("data", onData)
  child.stderr?.on("data", onData)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }))
  })
  const logs = () => lines.flatMap((line) => parseJson(line))
  const service: ServiceProcess = {
    child,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    dataDir,
    lines,
    logs,
    exited,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    }
  }
  if (options.expectExit) {
    await exited
    return service
  }
  await waitFor(
    () => logs().some((entry) => entry["msg"] === "service started"),
    exited,
    options.timeoutMs ?? 90_000,
    () => lines.slice(-10).join("\n")
  )
  return service
}

const parseJson = (line: string): Array<Record<string, unknown>> => {
  if (!line.startsWith("{")) return []
  try {
    const value: unknown = JSON.parse(line)
    return typeof value === "object" && value !== null ? [Object.fromEntries(Object.entries(value))] : []
  } catch {
    return []
  }
}

const waitFor = async (
  condition: () => boolean,
  exited: Promise<unknown>,
  timeoutMs: number,
  describe: () => string
) => {
  let hasExited = false
  void exited.then(() => {
    hasExited = true
  })
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (hasExited) throw new Error(`service exited before it started:\n${describe()}`)
    if (Date.now() > deadline) throw new Error(`service did not start within ${timeoutMs} ms:\n${describe()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** True while a process with this pid exists. */
export const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return error instanceof Error && "code" in error && error.code === "EPERM"
  }
}

/** Reads the pid of the embedded PostgreSQL serving `dataDir` from its postmaster.pid. */
export const embeddedPostgresPid = (dataDir: string): number | undefined => {
  const file = Path.join(dataDir, "postgres", "postmaster.pid")
  if (!Fs.existsSync(file)) return undefined
  return Number(Fs.readFileSync(file, "utf8").split("\n")[0])
}
