/**
 * The database the service runs on: the PostgreSQL named by DATABASE_URL, or
 * an embedded PostgreSQL 18 under DATA_DIR when it is unset. Building the
 * layer also applies pending migrations, so every layer that needs the
 * database finds the current schema.
 */
import { PgClient } from "@effect/sql-pg"
import { Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import { AppConfig } from "./AppConfig.ts"
import { startEmbeddedPostgres } from "./EmbeddedPostgres.ts"
import { loadLocalSecrets } from "./LocalSecrets.ts"
import { runMigrations } from "./Migrations.ts"
import { enableAppRole } from "./AppRole.ts"

export type DatabaseKind = "embedded" | "external"

export interface DatabaseShape {
  readonly kind: DatabaseKind
  /** Owner of the schema: runs migrations and bootstrap. */
  readonly ownerUrl: Redacted.Redacted<URL>
  /** Login of the service's pool. */
  readonly appUrl: Redacted.Redacted<URL>
  readonly ipHashPepper: Redacted.Redacted<string>
}

export class Database extends Context.Service<Database, DatabaseShape>()("porchlight/services/Database") {
  static readonly layer = Layer.effect(
    Database,
    Effect.gen(function*() {
      const config = yield* AppConfig
      const database = Option.isSome(config.databaseUrl)
        ? yield* externalDatabase(config.databaseUrl.value, config.ipHashPepper)
        : yield* embeddedDatabase(config.dataDir, config.embeddedPostgresPort, config.ipHashPepper)
      const applied = yield* runMigrations(database.ownerUrl)
      const appUrl = yield* Option.match(config.databaseAppUrl, {
        onNone: () => enableAppRole(database.ownerUrl, database.ipHashPepper),
        onSome: Effect.succeed
      })
      yield* Effect.logInfo("database ready").pipe(
        Effect.annotateLogs({ databaseKind: database.kind, migrationsApplied: applied.length })
      )
      return { ...database, appUrl }
    }).pipe(Effect.annotateLogs("service", "database"))
  )
}

const externalDatabase = (url: Redacted.Redacted<URL>, pepper: Option.Option<Redacted.Redacted<string>>) =>
  Effect.gen(function*() {
    // AppConfig already requires the pepper when DATABASE_URL is set.
    const ipHashPepper = yield* Effect.fromOption(pepper).pipe(Effect.orDie)
    return { kind: "external" as const, ownerUrl: url, ipHashPepper }
  })

const embeddedDatabase = (dataDir: string, port: number, pepper: Option.Option<Redacted.Redacted<string>>) =>
  Effect.gen(function*() {
    const secrets = yield* loadLocalSecrets(dataDir)
    yield* Effect.logInfo("starting embedded PostgreSQL").pipe(Effect.annotateLogs({ dataDir, port }))
    let stopping = false
    const runFork = Effect.runForkWith(yield* Effect.context<never>())
    const cluster = yield* startEmbeddedPostgres({
      dataDir,
      port,
      superuserPassword: secrets.superuserPassword,
      onUnexpectedExit: (code, signal) => {
        if (stopping) return
        runFork(Effect.logError("embedded PostgreSQL exited").pipe(
          Effect.annotateLogs({ service: "database", exitCode: code, signal })
        ))
      }
    })
    // Registered after the start, so it runs before the stop.
    yield* Effect.addFinalizer(() => Effect.sync(() => {
      stopping = true
    }))
    return {
      kind: "embedded" as const,
      ownerUrl: cluster.ownerUrl,
      ipHashPepper: Option.getOrElse(pepper, () => secrets.ipHashPepper)
    }
  })

/** The `@effect/sql-pg` pool over the application URL. */
export const SqlLive = Layer.unwrap(
  Effect.gen(function*() {
    const database = yield* Database
    const config = yield* AppConfig
    return PgClient.layer({
      url: Redacted.make(Redacted.value(database.appUrl).href),
      maxConnections: config.databasePoolSize,
      connectTimeout: Duration.seconds(5),
      acquireTimeout: Duration.seconds(5),
      idleTimeout: Duration.minutes(1),
      applicationName: "porchlight",
      // The client prepares every statement, and after five runs PostgreSQL
      // may switch to a generic plan built without the parameter values. The
      // ingest writes pass arrays of varying size, and generic plans made
      // their throughput fall as tables grew. Measured on 20,000 beacons over
      // loopback: 885 falling to 609 events/s, and 948 rising to 1,206 with
      // custom plans.
      startupParameters: { plan_cache_mode: "force_custom_plan" }
    })
  })
)
