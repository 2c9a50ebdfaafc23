/**
 * Database access for the CLI commands: the same settings as the service
 * (DATABASE_URL, or the embedded PostgreSQL under DATA_DIR), as the schema
 * owner, after pending migrations. Log lines from that work (such as
 * "migration applied") go to stderr, so stdout carries only the result.
 */
import { Effect, Schema } from "effect"
import type pg from "pg"
import { pino } from "pino"
import { type AppSettings, loadSettings } from "../services/AppConfig.ts"
import { layerLogger } from "../services/Log.ts"
import { ownerQuery, withOwnerClient } from "../services/OwnerClient.ts"
import { ownerConnection } from "../services/OwnerConnection.ts"

/**
 * Runs `work` on an owner connection. When the service is not running and
 * no DATABASE_URL is set, the embedded PostgreSQL is started for this call
 * and stopped when it returns.
 */
export const withOwnerDatabase = <A, E>(
  work: (client: pg.Client, settings: AppSettings) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    const settings = yield* loadSettings
    const stderrLogger = layerLogger(settings.logLevel, pino.destination({ fd: 2, sync: true }))
    return yield* Effect.gen(function*() {
      const url = yield* ownerConnection(settings)
      return yield* withOwnerClient(url, (client) => work(client, settings))
    }).pipe(Effect.scoped, Effect.provide(stderrLogger))
  })

/**
 * Runs a query and decodes its rows with `schema`. A row that does not match
 * is a bug in the query, so it ends the run as a defect.
 */
export const queryRows = <S extends Schema.Codec<unknown, unknown>>(
  client: pg.Client,
  schema: S,
  text: string,
  values: ReadonlyArray<unknown>
) =>
  ownerQuery(client, text, values).pipe(
    Effect.flatMap((result) => Schema.decodeUnknownEffect(Schema.Array(schema))(result.rows)),
    Effect.catchTag("SchemaError", (error) => Effect.die(error))
  )

/** SQLSTATE of a unique violation. */
export const UNIQUE_VIOLATION = "23505"
/** SQLSTATE of a foreign key violation. */
export const FOREIGN_KEY_VIOLATION = "23503"
