/**
 * CPU time of processes and of the machine from Linux's /proc, the floor
 * server as a child process, and the facts about the machine that a
 * benchmark record names.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import { fileURLToPath } from "node:url"

/** Kernel clock ticks per second, the unit of the CPU times in /proc (`getconf CLK_TCK`). */
export const clockTicksPerSecond = (): number => {
  const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim())
  if (!Number.isInteger(ticks) || ticks <= 0) throw new Error(`invalid CLK_TCK from getconf: ${ticks}`)
  return ticks
}

interface ProcStat {
  readonly pid: number
  readonly ppid: number
  /** utime + stime, in clock ticks. */
  readonly ownTicks: number
  /** cutime + cstime: time of children that have exited and been waited for. */
  readonly reapedChildTicks: number
}

/** Reads /proc/<pid>/stat (or a thread's, /proc/<pid>/task/<tid>/stat), or undefined once it has exited. */
const readStat = (path: string): ProcStat | undefined => {
  let text: string
  try {
    text = Fs.readFileSync(path, "utf8")
  } catch {
    return undefined
  }
  // The command name in brackets may contain spaces, so fields are counted after it.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ")
  const field = (stat: number) => Number(fields[stat - 3])
  return {
    pid: Number(text.slice(0, text.indexOf(" "))),
    ppid: field(4),
    ownTicks: field(14) + field(15),
    reapedChildTicks: field(16) + field(17)
  }
}

/** Returns the CPU seconds of one process, all its threads together. */
export const processCpuSeconds = (pid: number, ticksPerSecond: number): number => {
  const stat = readStat(`/proc/${pid}/stat`)
  if (stat === undefined) throw new Error(`process ${pid} is not running`)
  return stat.ownTicks / ticksPerSecond
}

/** Returns the CPU seconds of a process's main thread, the one that runs JavaScript in Node. */
export const mainThreadCpuSeconds = (pid: number, ticksPerSecond: number): number => {
  const stat = readStat(`/proc/${pid}/task/${pid}/stat`)
  if (stat === undefined) throw new Error(`process ${pid} is not running`)
  return stat.ownTicks / ticksPerSecond
}

/**
 * Returns the CPU seconds of a process and all its descendants, such as
 * PostgreSQL's postmaster and its backends. Counting each member's own and
 * reaped children's time keeps the sum steady when a backend exits, because
 * its time then moves to its parent's reaped-children time.
 */
export const processTreeCpuSeconds = (rootPid: number, ticksPerSecond: number): number => {
  const stats: Array<ProcStat> = []
  for (const entry of Fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    const stat = readStat(`/proc/${entry}/stat`)
    if (stat !== undefined) stats.push(stat)
  }
  const children = Map.groupBy(stats, (stat) => stat.ppid)
  let ticks = 0
  const pending = stats.filter((stat) => stat.pid === rootPid)
  if (pending.length === 0) throw new Error(`process ${rootPid} is not running`)
  for (let stat = pending.pop(); stat !== undefined; stat = pending.pop()) {
    ticks += stat.ownTicks + stat.reapedChildTicks
    pending.push(...(children.get(stat.pid) ?? []))
  }
  return ticks / ticksPerSecond
}

/** Returns the CPU seconds that all cores of the machine spent busy (not idle or waiting for I/O), from /proc/stat. */
export const machineBusyCpuSeconds = (ticksPerSecond: number): number => {
  const line = Fs.readFileSync("/proc/stat", "utf8").split("\n")[0] ?? ""
  const values = line.trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal; guest times are already in user and nice.
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = values
  return (user + nice + system + irq + softirq + steal) / ticksPerSecond
}

export interface MachineFacts {
  readonly cores: number
  readonly cpuModel: string
  readonly memoryGiB: number
  readonly kernel: string
  readonly nodeVersion: string
}

export const machineFacts = (): MachineFacts => {
  const cpuinfo = Fs.readFileSync("/proc/cpuinfo", "utf8")
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown"
  return {
    cores: Os.availableParallelism(),
    cpuModel: model,
    memoryGiB: Math.round((Os.totalmem() / 1024 ** 3) * 10) / 10,
    kernel: `${Os.type()} ${Os.release()}`,
    nodeVersion: process.version
  }
}

export interface FloorServer {
  readonly child: ChildProcess
  readonly pid: number
  readonly port: number
  readonly stop: () => Promise<void>
}

const FLOOR_SCRIPT = fileURLToPath(new URL("./floorServer.ts", import.meta.url))
const FLOOR_START_TIMEOUT_MS = 10_000
const STOP_TIMEOUT_MS = 10_000

/** Starts the bare `node:http` floor server in a child process and waits for its port. */
export const startFloorServer = (): Promise<FloorServer> => startPortPrinter(FLOOR_SCRIPT, {})

/**
 * Starts a server script in a child process and waits for the `{"port": N}`
 * line it prints once it listens.
 */
export const startPortPrinter = (script: string, env: Readonly<Record<string, string>>): Promise<FloorServer> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...env }
    })
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${script} did not print its port within ${FLOOR_START_TIMEOUT_MS} ms`))
    }, FLOOR_START_TIMEOUT_MS)
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${script} exited before it listened (code ${code}, signal ${signal})`))
    })
    child.stdout?.setEncoding("utf8")
    child.stdout?.once("data", (chunk: string) => {
      clearTimeout(timer)
      const port = Number(/"port":(\d+)/.exec(chunk)?.[1])
      if (child.pid === undefined || !Number.isInteger(port) || port <= 0) {
        child.kill("SIGKILL")
        reject(new Error(`${script} printed no port: ${JSON.stringify(chunk.slice(0, 200))}`))
        return
      }
      resolve({ child, pid: child.pid, port, stop: () => stopChild(child) })
    })
  })

/** Sends SIGTERM to the child, then SIGKILL when it has not exited after `timeoutMs`. */
export const stopChild = (child: ChildProcess, timeoutMs = STOP_TIMEOUT_MS): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve()
      return
    }
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill("SIGTERM")
  })
