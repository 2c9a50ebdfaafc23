/**
 * API key resolution: finds a presented key by its public prefix, checks its
 * hash, revocation, scope and (for ingest keys) the request's origin.
 * Resolved keys are cached for API_KEY_CACHE_SECONDS (30 by default), so
 * ingest does not query the database per request. A revoked key is rejected
 * at the latest that long after its revocation. `last_used_at` is written in
 * the background, at most once a minute per key.
 */
import { Clock, Context, Effect, Layer, Schedule, Schema } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { AppConfig } from "./AppConfig.ts"
import { type ApiKeyScope, keyMatches, keyPrefix, PREFIX_LENGTH } from "./ApiKeyFormat.ts"

export interface ResolvedKey {
  readonly keyId: string
  readonly tenantId: string
  /** The property an ingest key writes to, or the one an admin key is limited to. */
  readonly propertyId: string | null
  readonly scope: ApiKeyScope
  /** Host names of the key's property, empty for a tenant-wide key. */
  readonly propertyDomains: ReadonlyArray<string>
}

export class ApiKeyError extends Schema.TaggedError<ApiKeyError>()("ApiKeyError", {
  reason: Schema.Literals(["missing_key", "invalid_key", "revoked_key", "wrong_scope", "origin_not_allowed"])
}) {}

export interface ApiKeysShape {
  /**
   * Resolves `presented` for an endpoint that needs `scope`. `origin` is the
   * request's Origin header. An ingest key is rejected from any origin that is
   * not one of its property's. A request without Origin (a server, not a
   * browser) is not checked, because a non-browser client can send any Origin.
   */
  readonly resolve: (
    presented: string | undefined,
    scope: ApiKeyScope,
    origin: string | undefined
  ) => Effect.Effect<ResolvedKey, ApiKeyError>
  /** Drops every cached key, so the next request reads the database. */
  readonly invalidate: Effect.Effect<void>
}

interface StoredKey extends ResolvedKey {
  readonly keyHash: Uint8Array
  readonly revoked: boolean
  readonly origins: ReadonlySet<string>
  readonly domains: ReadonlySet<string>
}

interface CacheEntry {
  readonly key: StoredKey | undefined
  readonly expiresAt: number
}

const MAX_CACHED_KEYS = 10_000
const MAX_KEY_LENGTH = 256

export class ApiKeys extends Context.Service<ApiKeys, ApiKeysShape>()("porchlight/services/ApiKeys") {
  static readonly layer = Layer.effect(
    ApiKeys,
    Effect.gen(function*() {
      const sql = yield* SqlClient
      const config = yield* AppConfig
      const ttlMs = config.apiKeyCacheSeconds * 1000
      const cache = new Map<string, CacheEntry>()
      const used = new Set<string>()

      const load = (prefix: string) =>
        sql<{
          keyId: string
          tenantId: string
          propertyId: string | null
          scope: ApiKeyScope
          keyHash: Uint8Array
          revoked: boolean
          propertyDomains: ReadonlyArray<string> | null
          propertyOrigins: ReadonlyArray<string> | null
        }>`SELECT key_id AS "keyId", tenant_id AS "tenantId", property_id AS "propertyId", scope,
                  key_hash AS "keyHash", revoked, property_domains AS "propertyDomains",
                  property_origins AS "propertyOrigins"
           FROM porchlight_find_api_key(${prefix})`.pipe(
          Effect.map((rows): StoredKey | undefined => {
            const row = rows[0]
            if (row === undefined) return undefined
            return {
              keyId: row.keyId,
              tenantId: row.tenantId,
              propertyId: row.propertyId,
              scope: row.scope,
              propertyDomains: row.propertyDomains ?? [],
              keyHash: row.keyHash,
              revoked: row.revoked,
              origins: new Set(row.propertyOrigins ?? []),
              domains: new Set(row.propertyDomains ?? [])
            }
          }),
          // A database failure here is not the caller's to handle.
          Effect.orDie
        )

      const lookup = (prefix: string) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const cached = cache.get(prefix)
          if (cached !== undefined && cached.expiresAt > now) return cached.key
          const key = yield* load(prefix)
          if (ttlMs > 0) {
            if (cache.size >= MAX_CACHED_KEYS) cache.delete(cache.keys().next().value ?? "")
            cache.set(prefix, { key, expiresAt: now + ttlMs })
          }
          return key
        })

      const resolve = (presented: string | undefined, scope: ApiKeyScope, origin: string | undefined) =>
        Effect.gen(function*() {
          if (presented === undefined || presented === "") return yield* new ApiKeyError({ reason: "missing_key" })
          if (presented.length < PREFIX_LENGTH || presented.length > MAX_KEY_LENGTH) {
            return yield* new ApiKeyError({ reason: "invalid_key" })
          }
          const key = yield* lookup(keyPrefix(presented))
          if (key === undefined || !keyMatches(presented, key.keyHash)) {
            return yield* new ApiKeyError({ reason: "invalid_key" })
          }
          if (key.revoked) return yield* new ApiKeyError({ reason: "revoked_key" })
          if (key.scope !== scope) return yield* new ApiKeyError({ reason: "wrong_scope" })
          if (scope === "ingest" && origin !== undefined && !originAllowed(origin, key)) {
            return yield* new ApiKeyError({ reason: "origin_not_allowed" })
          }
          used.add(key.keyId)
          return {
            keyId: key.keyId,
            tenantId: key.tenantId,
            propertyId: key.propertyId,
            scope: key.scope,
            propertyDomains: key.propertyDomains
          }
        })

      const touchUsedKeys = Effect.suspend(() => {
        if (used.size === 0) return Effect.void
        const ids = [...used]
        used.clear()
        return sql`SELECT porchlight_touch_api_keys(${ids}::uuid[])`.pipe(
          Effect.asVoid,
          Effect.catchCause((cause) => Effect.logWarning("could not record key use", cause))
        )
      })
      yield* touchUsedKeys.pipe(Effect.repeat(Schedule.spaced("30 seconds")), Effect.forkScoped)
      yield* Effect.addFinalizer(() => touchUsedKeys)

      return ApiKeys.of({ resolve, invalidate: Effect.sync(() => cache.clear()) })
    }).pipe(Effect.annotateLogs("service", "api-keys"))
  )
}

const originAllowed = (origin: string, key: StoredKey) => {
  if (key.origins.has(origin)) return true
  if (!URL.canParse(origin)) return false
  return key.domains.has(new URL(origin).hostname)
}
