/**
 * Applies the plain SQL files of `migrations/` in order, each in its own
 * transaction, and records each in `schema_migrations` so it runs once.
 *
 * Migrations run as the database owner over node-postgres, because a file
 * contains many statements and only the simple query protocol accepts that.
 * The service's own queries go through `@effect/sql-pg` as the application
 * role. An advisory lock serialises concurrent starts.
 */
import { Data, Effect, Redacted } from "effect"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import type pg from "pg"
import { OwnerQueryError, ownerQuery as query, ownerTransaction, withOwnerClient } from "./OwnerClient.ts"

export class MigrationError extends Data.TaggedError("MigrationError")<{
  readonly message: string
  readonly migration?: string
}> {}

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations", import.meta.url))

/** Arbitrary constant that identifies the migration lock among advisory locks. */
const MIGRATION_LOCK_KEY = 7_273_001

interface MigrationFile {
  readonly version: number
  readonly name: string
  readonly sql: string
  readonly checksum: string
}

/** Applies pending migrations and returns the file names applied, in order. */
export const runMigrations = (
  ownerUrl: Redacted.Redacted<URL>,
  directory: string = MIGRATIONS_DIR
): Effect.Effect<ReadonlyArray<string>, MigrationError> =>
  withOwnerClient(ownerUrl, (client) => applyPending(client, directory)).pipe(
    Effect.mapError((error) => error instanceof OwnerQueryError ? new MigrationError({ message: error.message }) : error),
    Effect.annotateLogs("service", "migrations")
  )

const applyPending = (client: pg.Client, directory: string) =>
  Effect.gen(function*() {
    const files = yield* readMigrationFiles(directory)
    yield* query(client, "SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY])
    return yield* Effect.gen(function*() {
      yield* query(client, `
        CREATE TABLE IF NOT EXISTS schema_migrations (
          version integer PRIMARY KEY,
          name text NOT NULL,
          checksum text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`)
      const applied = yield* query(client, "SELECT version, name, checksum FROM schema_migrations")
      const known = new Map(applied.rows.map((row) => [Number(row["version"]), String(row["checksum"])]))
      const done: Array<string> = []
      for (const file of files) {
        const checksum = known.get(file.version)
        if (checksum !== undefined) {
          if (checksum !== file.checksum) {
            yield* Effect.logWarning("applied migration file has changed since it ran").pipe(
              Effect.annotateLogs({ migration: file.name })
            )
          }
          continue
        }
        yield* applyOne(client, file)
        done.push(file.name)
      }
      return done
    }).pipe(Effect.ensuring(Effect.ignore(query(client, "SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]))))
  })

const applyOne = (client: pg.Client, file: MigrationFile) =>
  Effect.gen(function*() {
    const started = Date.now()
    yield* ownerTransaction(client, Effect.gen(function*() {
      yield* query(client, file.sql)
      yield* query(client, "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [
        file.version,
        file.name,
        file.checksum
      ])
    })).pipe(
      Effect.mapError((error) => new MigrationError({ message: `${file.name}: ${error.message}`, migration: file.name }))
    )
    yield* Effect.logInfo("migration applied").pipe(
      Effect.annotateLogs({ migration: file.name, durationMs: Date.now() - started })
    )
  })

const readMigrationFiles = (directory: string) =>
  Effect.try({
    try: () =>
      Fs.readdirSync(directory)
        .flatMap((fileName): Array<MigrationFile> => {
          const match = /^(\d{4})_[a-z0-9_]+\.sql$/.exec(fileName)
          if (match === null) return []
          const sql = Fs.readFileSync(Path.join(directory, fileName), "utf8")
          const checksum = createHash("sha256").update(sql).digest("hex")
          return [{ version: Number(match[1]), name: fileName, sql, checksum }]
        })
        .sort((a, b) => a.version - b.version),
    catch: (error) => new MigrationError({ message: `could not read ${directory}: ${String(error)}` })
  })
