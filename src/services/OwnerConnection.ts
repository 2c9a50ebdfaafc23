/**
 * The owner's database URL for operator tools that run beside the service:
 * DATABASE_URL when set; otherwise the embedded PostgreSQL under DATA_DIR,
 * reached on the port in its postmaster.pid when the service is running, or
 * started for the duration of the scope when it is not.
 */
import { Data, Effect, Option, Redacted, type Scope } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { AppSettings } from "./AppConfig.ts"
import { type EmbeddedPostgresError, startEmbeddedPostgres } from "./EmbeddedPostgres.ts"
import { loadLocalSecrets, type LocalSecretsError } from "./LocalSecrets.ts"
import { runMigrations, type MigrationError } from "./Migrations.ts"

export class NoDatabase extends Data.TaggedError("NoDatabase")<{ readonly message: string }> {}

/** Resolves the owner URL, starting the embedded server if needed, and applies pending migrations. */
export const ownerConnection = (
  settings: AppSettings
): Effect.Effect<
  Redacted.Redacted<URL>,
  EmbeddedPostgresError | LocalSecretsError | MigrationError | NoDatabase,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const url = Option.isSome(settings.databaseUrl)
      ? settings.databaseUrl.value
      : yield* embeddedOwnerUrl(settings)
    yield* runMigrations(url)
    return url
  })

const embeddedOwnerUrl = (settings: AppSettings) =>
  Effect.gen(function*() {
    const secretsFile = Path.join(settings.dataDir, "secrets.json")
    if (!Fs.existsSync(secretsFile)) {
      return yield* new NoDatabase({
        message: `no database in DATA_DIR ${settings.dataDir}: start the service once, or set DATABASE_URL`
      })
    }
    const secrets = yield* loadLocalSecrets(settings.dataDir)
    const runningPort = portOfRunningServer(settings.dataDir)
    if (runningPort !== undefined) {
      const url = new URL(`postgres://postgres@127.0.0.1:${runningPort}/postgres`)
      url.password = Redacted.value(secrets.superuserPassword)
      return Redacted.make(url)
    }
    const cluster = yield* startEmbeddedPostgres({
      dataDir: settings.dataDir,
      port: settings.embeddedPostgresPort,
      superuserPassword: secrets.superuserPassword
    })
    return cluster.ownerUrl
  })

/** Returns the port in postmaster.pid (its fourth line) when that server is alive. */
const portOfRunningServer = (dataDir: string): number | undefined => {
  const pidFile = Path.join(dataDir, "postgres", "postmaster.pid")
  if (!Fs.existsSync(pidFile)) return undefined
  const lines = Fs.readFileSync(pidFile, "utf8").split("\n")
  const pid = Number(lines[0])
  const port = Number(lines[3])
  if (!Number.isInteger(pid) || !Number.isInteger(port)) return undefined
  try {
    process.kill(pid, 0)
    return port
  } catch {
    return undefined
  }
}
