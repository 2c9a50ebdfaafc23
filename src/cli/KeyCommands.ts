/**
 * `key create`, `key revoke` and `key list`: API keys of a tenant. A new
 * key is printed once. The database keeps only its public prefix and its
 * SHA-256 hash (see `services/ApiKeyFormat.ts`), so it cannot be shown again.
 */
import { Console, Effect, Option, Result, Schema } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import type pg from "pg"
import { type ApiKeyScope, generateApiKey, hashApiKey, keyPrefix, PREFIX_LENGTH } from "../services/ApiKeyFormat.ts"
import type { AppSettings } from "../services/AppConfig.ts"
import { ownerTransaction } from "../services/OwnerClient.ts"
import { isSlug } from "../services/PropertyRules.ts"
import { CommandFailed } from "./Failures.ts"
import { isUuid, jsonFlag, lengthBetween, parsedFlag, tenantFlag } from "./Flags.ts"
import { formatTime, isoTime, printJson, printTable } from "./Output.ts"
import { queryRows, withOwnerDatabase } from "./OwnerDatabase.ts"
import { requireTenant } from "./TenantCommands.ts"

const MAX_KEY_NAME_LENGTH = 200
/** Characters of a key: its scope tag and base64url, or a key configured in ADMIN_API_KEY / INGEST_API_KEY. */
const KEY_CHARACTERS = /^[A-Za-z0-9_-]+$/
/** Bounds of a whole key given to `key revoke`. Keys set in ADMIN_API_KEY or INGEST_API_KEY have 24 to 128 characters. */
const MIN_KEY_LENGTH = 24
const MAX_KEY_LENGTH = 256

const KeyRow = Schema.Struct({
  id: Schema.String,
  tenantId: Schema.String,
  prefix: Schema.String,
  scope: Schema.Literals(["ingest", "admin"]),
  propertySlug: Schema.NullOr(Schema.String),
  name: Schema.String,
  createdAt: Schema.Date,
  lastUsedAt: Schema.NullOr(Schema.Date),
  revokedAt: Schema.NullOr(Schema.Date)
})
type KeyRow = typeof KeyRow.Type

/** Every column of a key except its hash, which no command reads. */
const SELECT_KEYS = `SELECT k.id, k.tenant_id AS "tenantId", k.prefix, k.scope::text AS scope,
    p.slug AS "propertySlug", k.name, k.created_at AS "createdAt", k.last_used_at AS "lastUsedAt",
    k.revoked_at AS "revokedAt"
  FROM api_keys k LEFT JOIN properties p ON p.id = k.property_id`

const keyJson = (key: KeyRow) => ({
  id: key.id,
  tenantId: key.tenantId,
  prefix: key.prefix,
  scope: key.scope,
  propertySlug: key.propertySlug,
  name: key.name,
  createdAt: isoTime(key.createdAt),
  lastUsedAt: isoTime(key.lastUsedAt),
  revokedAt: isoTime(key.revokedAt)
})

const singleRow = <A>(rows: ReadonlyArray<A>, statement: string) =>
  rows[0] === undefined ? Effect.die(`${statement} returned no row`) : Effect.succeed(rows[0])

// --- key create -------------------------------------------------------------

const findPropertyId = (client: pg.Client, tenantId: string, slug: string) =>
  queryRows(client, Schema.Struct({ id: Schema.String }), "SELECT id FROM properties WHERE tenant_id = $1 AND slug = $2", [
    tenantId,
    slug
  ]).pipe(Effect.flatMap((rows) =>
    rows[0] === undefined
      ? Effect.fail(
        new CommandFailed({
          message: `property "${slug}" not found in tenant ${tenantId}. Run "property list --tenant ${tenantId}" to see the slugs.`
        })
      )
      : Effect.succeed(rows[0].id)
  ))

/** Inserts a new key and returns its row with the key itself, which exists nowhere else. */
const insertKey = (
  client: pg.Client,
  request: {
    readonly tenantId: string
    readonly scope: ApiKeyScope
    readonly propertySlug: Option.Option<string>
    readonly name: string
  }
) =>
  ownerTransaction(
    client,
    Effect.gen(function*() {
      yield* requireTenant(client, request.tenantId)
      const propertyId = Option.isSome(request.propertySlug)
        ? yield* findPropertyId(client, request.tenantId, request.propertySlug.value)
        : null
      const key = generateApiKey(request.scope)
      const inserted = yield* queryRows(
        client,
        Schema.Struct({ id: Schema.String }),
        `INSERT INTO api_keys (tenant_id, property_id, scope, name, prefix, key_hash)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
        [request.tenantId, propertyId, request.scope, request.name, keyPrefix(key), hashApiKey(key)]
      ).pipe(Effect.flatMap((rows) => singleRow(rows, "INSERT INTO api_keys")))
      const row = yield* queryRows(client, KeyRow, `${SELECT_KEYS} WHERE k.id = $1`, [inserted.id]).pipe(
        Effect.flatMap((rows) => singleRow(rows, "SELECT of the new key"))
      )
      return { row, key }
    })
  )

const ONCE_NOTICE = "This key is shown only this once, because only its SHA-256 hash is stored. Copy it now."

const create = Command.make(
  "create",
  {
    tenant: tenantFlag,
    scope: Flag.Literals("scope", ["ingest", "admin"]).pipe(
      Flag.withMetavar("ingest|admin"),
      Flag.withDescription("ingest for the public key of a site's tracker, admin for a secret key of the admin API")
    ),
    property: parsedFlag("property", (text) =>
      isSlug(text) ? Result.succeed(text) : Result.fail({ expected: "a property slug such as www" })).pipe(
        Flag.withMetavar("SLUG"),
        Flag.withDescription(
          "Slug of the property. An ingest key requires it and writes to that property. " +
            "On an admin key it limits the key to that property"
        ),
        Flag.optional
      ),
    name: parsedFlag("name", lengthBetween(1, MAX_KEY_NAME_LENGTH)).pipe(
      Flag.withMetavar("NAME"),
      Flag.withDescription(`Label that says where the key is used (at most ${MAX_KEY_NAME_LENGTH} characters)`),
      Flag.withDefault("")
    ),
    json: jsonFlag
  },
  (input) =>
    Effect.gen(function*() {
      const created = yield* withOwnerDatabase((client) =>
        insertKey(client, {
          tenantId: input.tenant,
          scope: input.scope,
          propertySlug: input.property,
          name: input.name
        })
      )
      const { key, row } = created
      if (input.json) {
        yield* printJson({ apiKey: keyJson(row), key })
        return yield* Console.error(ONCE_NOTICE)
      }
      const target = row.propertySlug === null
        ? `tenant ${row.tenantId}`
        : `property "${row.propertySlug}" of tenant ${row.tenantId}`
      yield* Console.log([
        `Created ${row.scope} key ${row.prefix} for ${target}.`,
        key,
        ONCE_NOTICE
      ].join("\n"))
    })
).pipe(
  Command.validate(({ property, scope }) =>
    scope === "ingest" && Option.isNone(property)
      ? Effect.fail(
        new CliError.ValidationError({
          message: "--property SLUG is required with --scope ingest, because an ingest key writes to one property"
        })
      )
      : Effect.void
  ),
  Command.withDescription("Create an API key and print it once"),
  Command.withExamples([
    { command: "npm run cli -- key create --tenant TENANT_ID --scope ingest --property www --name \"www tracker\"" },
    { command: "npm run cli -- key create --tenant TENANT_ID --scope admin --name \"reporting job\"" }
  ])
)

// --- key revoke -------------------------------------------------------------

type KeyReference =
  | { readonly column: "id"; readonly value: string }
  | { readonly column: "prefix"; readonly value: string }

/**
 * Reads a key id (UUID), a key prefix, or a whole key, of which only the
 * prefix is used. A UUID is tried first because it is also made of key
 * characters. Lengths between a prefix and a whole key are rejected, so a
 * mistyped prefix is not silently cut to length.
 */
const parseKeyReference = (text: string): Option.Option<KeyReference> => {
  if (isUuid(text)) return Option.some({ column: "id", value: text.toLowerCase() })
  if (!KEY_CHARACTERS.test(text)) return Option.none()
  if (text.length === PREFIX_LENGTH) return Option.some({ column: "prefix", value: text })
  if (text.length >= MIN_KEY_LENGTH && text.length <= MAX_KEY_LENGTH) {
    return Option.some({ column: "prefix", value: keyPrefix(text) })
  }
  return Option.none()
}

const describeReference = (reference: KeyReference) =>
  reference.column === "id" ? `id ${reference.value}` : `prefix ${reference.value}`

/** Marks the key revoked unless it already is, and returns its row and whether it was revoked before. */
const revokeKey = (client: pg.Client, reference: KeyReference) =>
  ownerTransaction(
    client,
    Effect.gen(function*() {
      const locked = yield* queryRows(
        client,
        Schema.Struct({ id: Schema.String }),
        `SELECT id FROM api_keys WHERE ${reference.column} = $1 FOR UPDATE`,
        [reference.value]
      )
      const target = locked[0]
      if (target === undefined) {
        return yield* new CommandFailed({
          message: `API key with ${describeReference(reference)} not found. Run "key list --tenant TENANT_ID" to see the prefixes.`
        })
      }
      const revoked = yield* queryRows(
        client,
        Schema.Struct({ id: Schema.String }),
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id",
        [target.id]
      )
      const row = yield* queryRows(client, KeyRow, `${SELECT_KEYS} WHERE k.id = $1`, [target.id]).pipe(
        Effect.flatMap((rows) => singleRow(rows, "SELECT of the revoked key"))
      )
      return { row, alreadyRevoked: revoked.length === 0 }
    })
  )

const revokedMessage = (row: KeyRow, alreadyRevoked: boolean, settings: AppSettings) =>
  alreadyRevoked
    ? `Key ${row.prefix} was already revoked at ${formatTime(row.revokedAt)}. Nothing changed.`
    : `Revoked ${row.scope} key ${row.prefix} of tenant ${row.tenantId}. A running service keeps a resolved key ` +
      `for API_KEY_CACHE_SECONDS (${settings.apiKeyCacheSeconds} here), so it may accept this key that much longer.`

const revoke = Command.make(
  "revoke",
  {
    key: Argument.String("PREFIX_OR_ID").pipe(
      Argument.withDescription(
        `The key's ${PREFIX_LENGTH}-character prefix or its id (a UUID), as printed by "key list", or the whole key`
      ),
      Argument.filterMap(
        parseKeyReference,
        () => `a key prefix of ${PREFIX_LENGTH} characters such as pk_AbCdEfGhI, a key id (UUID) or a whole key`
      )
    ),
    json: jsonFlag
  },
  ({ json, key }) =>
    Effect.gen(function*() {
      const result = yield* withOwnerDatabase((client, settings) =>
        Effect.map(revokeKey(client, key), (outcome) => ({ ...outcome, settings }))
      )
      if (json) return yield* printJson({ apiKey: keyJson(result.row), alreadyRevoked: result.alreadyRevoked })
      yield* Console.log(revokedMessage(result.row, result.alreadyRevoked, result.settings))
    })
).pipe(
  Command.withDescription("Revoke an API key (revoking it again changes nothing and exits 0)"),
  Command.withExamples([{ command: "npm run cli -- key revoke pk_AbCdEfGhI" }])
)

// --- key list ---------------------------------------------------------------

const list = Command.make("list", { tenant: tenantFlag, json: jsonFlag }, ({ json, tenant }) =>
  Effect.gen(function*() {
    const keys = yield* withOwnerDatabase((client) =>
      Effect.andThen(
        requireTenant(client, tenant),
        queryRows(client, KeyRow, `${SELECT_KEYS} WHERE k.tenant_id = $1 ORDER BY k.created_at`, [tenant])
      )
    )
    if (json) return yield* printJson({ apiKeys: keys.map(keyJson) })
    if (keys.length === 0) return yield* Console.log(`Tenant ${tenant} has no API keys.`)
    yield* printTable(
      ["PREFIX", "SCOPE", "PROPERTY", "NAME", "CREATED", "LAST USED", "REVOKED"],
      keys.map((key) => [
        key.prefix,
        key.scope,
        key.propertySlug ?? "-",
        key.name === "" ? "-" : key.name,
        formatTime(key.createdAt),
        formatTime(key.lastUsedAt),
        formatTime(key.revokedAt)
      ])
    )
  })).pipe(
    Command.withDescription("List a tenant's API keys (prefixes only, never the keys or their hashes)"),
    Command.withExamples([{ command: "npm run cli -- key list --tenant TENANT_ID" }])
  )

export const keyCommand = Command.make("key").pipe(
  Command.withDescription("Create, revoke and list API keys"),
  Command.withSubcommands([create, revoke, list])
)
