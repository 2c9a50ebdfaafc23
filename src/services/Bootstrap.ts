/**
 * First start on an empty database: creates a tenant, its property
 * `default` (allowed origins from CORS_ALLOWED_ORIGINS) and one admin and one
 * ingest key. A key set in ADMIN_API_KEY or INGEST_API_KEY becomes that
 * scope's key (only its hash is stored); otherwise one is generated and
 * printed once on stdout, outside the JSON log.
 */
import { Context, Effect, Layer, Option, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type pg from "pg"
import { AppConfig, type AppSettings } from "./AppConfig.ts"
import { type ApiKeyScope, generateApiKey, hashApiKey, keyPrefix } from "./ApiKeyFormat.ts"
import { Database } from "./Database.ts"
import { ownerQuery, ownerTransaction, withOwnerClient } from "./OwnerClient.ts"

/** Arbitrary constant that identifies the bootstrap lock among advisory locks. */
const BOOTSTRAP_LOCK_KEY = 7_273_002

export interface BootstrapResult {
  readonly created: boolean
  /** Keys that were generated (not taken from the environment), to show once. */
  readonly generatedKeys: ReadonlyArray<{ readonly scope: ApiKeyScope; readonly key: string }>
}

export class Bootstrap extends Context.Service<Bootstrap, BootstrapResult>()("porchlight/services/Bootstrap") {
  static readonly layer = Layer.effect(
    Bootstrap,
    Effect.gen(function*() {
      const database = yield* Database
      const settings = yield* AppConfig
      const result = yield* withOwnerClient(database.ownerUrl, (client) => bootstrapIfEmpty(client, settings))
      if (result.created) {
        yield* Effect.logInfo("bootstrap tenant and property created").pipe(
          Effect.annotateLogs({ property: "default", generatedKeys: result.generatedKeys.length })
        )
        const ingestKey = result.generatedKeys.find((generated) => generated.scope === "ingest")
        if (database.kind === "embedded" && ingestKey !== undefined) {
          yield* Effect.sync(() => writeDemoIngestKey(settings.dataDir, ingestKey.key))
        }
      }
      return result
    }).pipe(Effect.annotateLogs("service", "bootstrap"))
  )
}

const bootstrapIfEmpty = (client: pg.Client, settings: AppSettings) =>
  ownerTransaction(client, Effect.gen(function*() {
    yield* ownerQuery(client, "SELECT pg_advisory_xact_lock($1)", [BOOTSTRAP_LOCK_KEY])
    const existing = yield* ownerQuery(client, "SELECT 1 FROM tenants LIMIT 1")
    if (existing.rowCount !== null && existing.rowCount > 0) {
      return { created: false, generatedKeys: [] }
    }
    const tenant = yield* ownerQuery(client, "INSERT INTO tenants (name) VALUES ($1) RETURNING id", ["Default tenant"])
    const tenantId: unknown = tenant.rows[0]?.["id"]
    const origins = settings.corsAllowedOrigins
    const domains = [...new Set(origins.map((origin) => new URL(origin).hostname))]
    const property = yield* ownerQuery(
      client,
      `INSERT INTO properties (tenant_id, slug, name, domains, allowed_origins)
       VALUES ($1, 'default', 'Default property', $2, $3) RETURNING id`,
      [tenantId, domains, origins]
    )
    const propertyId: unknown = property.rows[0]?.["id"]
    const generatedKeys: Array<{ scope: ApiKeyScope; key: string }> = []
    for (const [scope, configured] of [["admin", settings.adminApiKey], ["ingest", settings.ingestApiKey]] as const) {
      const key = Option.match(configured, { onNone: () => generateApiKey(scope), onSome: Redacted.value })
      if (Option.isNone(configured)) generatedKeys.push({ scope, key })
      yield* ownerQuery(
        client,
        `INSERT INTO api_keys (tenant_id, property_id, scope, name, prefix, key_hash)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [tenantId, scope === "ingest" ? propertyId : null, scope, `bootstrap ${scope} key`, keyPrefix(key),
          hashApiKey(key)]
      )
    }
    return { created: true, generatedKeys }
  }))

/**
 * Keeps the generated ingest key under DATA_DIR so that the bundled example
 * site can send to this service. Ingest keys ship in page code anyway, so
 * storing this one in clear exposes nothing that the site does not.
 */
const writeDemoIngestKey = (dataDir: string, key: string) =>
  Fs.writeFileSync(Path.join(dataDir, DEMO_INGEST_KEY_FILE), `${key}\n`, { mode: 0o600 })

export const DEMO_INGEST_KEY_FILE = "demo-ingest-key"

/** Shows generated keys once on stdout, outside the JSON log; called once the service listens. */
export const printKeys = (keys: BootstrapResult["generatedKeys"]) => {
  if (keys.length === 0) return
  const lines = [
    "",
    "Porchlight created a tenant with the property \"default\" and these API keys.",
    "They are shown this once; store them now (only their hashes are kept):",
    ...keys.map(({ key, scope }) => `  ${scope === "admin" ? "admin key: " : "ingest key:"} ${key}`),
    ""
  ]
  process.stdout.write(`${lines.join("\n")}\n`)
}
