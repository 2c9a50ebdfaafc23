/**
 * `property create` and `property list`. The input rules are the admin API's
 * (`services/PropertyRules.ts`), so a property created here is one the API
 * would accept too. Unlike the API, the CLI also takes explicit CORS origins.
 */
import { Console, Effect, Option, Result, Schema } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import type pg from "pg"
import { OwnerQueryError } from "../services/OwnerClient.ts"
import {
  DEFAULT_TIMEZONE,
  defaultOrigins,
  isSlug,
  isTimeZone,
  MAX_DOMAINS,
  MAX_NAME_LENGTH,
  MAX_ORIGINS,
  normaliseHost,
  normaliseOrigin,
  thankYouUrlProblem
} from "../services/PropertyRules.ts"
import { CommandFailed } from "./Failures.ts"
import { jsonFlag, lengthBetween, parsedFlag, tenantFlag } from "./Flags.ts"
import { formatTime, isoTime, printJson, printTable } from "./Output.ts"
import { FOREIGN_KEY_VIOLATION, queryRows, UNIQUE_VIOLATION, withOwnerDatabase } from "./OwnerDatabase.ts"
import { requireTenant } from "./TenantCommands.ts"

const PropertyRow = Schema.Struct({
  id: Schema.String,
  tenantId: Schema.String,
  slug: Schema.String,
  name: Schema.String,
  domains: Schema.Array(Schema.String),
  allowedOrigins: Schema.Array(Schema.String),
  timezone: Schema.String,
  thankYouUrl: Schema.NullOr(Schema.String),
  createdAt: Schema.Date
})
type PropertyRow = typeof PropertyRow.Type

const COLUMNS = `id, tenant_id AS "tenantId", slug, name, domains, allowed_origins AS "allowedOrigins", timezone,
  thank_you_url AS "thankYouUrl", created_at AS "createdAt"`

/** The admin API's JSON for a property, with its tenant. */
const propertyJson = (property: PropertyRow) => ({
  id: property.id,
  tenantId: property.tenantId,
  slug: property.slug,
  name: property.name,
  domains: property.domains,
  allowedOrigins: property.allowedOrigins,
  timezone: property.timezone,
  thankYouUrl: property.thankYouUrl,
  createdAt: isoTime(property.createdAt)
})

const splitList = (text: string) => text.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "")

/**
 * Parses a comma-separated list, normalising each entry and dropping
 * duplicates. An invalid entry is reported on its own.
 */
const parseList = (
  text: string,
  normalise: (entry: string) => string | undefined,
  limits: { readonly max: number; readonly listForm: string; readonly entryForm: string }
): Result.Result<ReadonlyArray<string>, { readonly expected: string; readonly value?: string }> => {
  const entries = splitList(text)
  if (entries.length === 0 || entries.length > limits.max) {
    return Result.fail({ expected: `1 to ${limits.max} ${limits.listForm}` })
  }
  const normalised: Array<string> = []
  for (const entry of entries) {
    const value = normalise(entry)
    if (value === undefined) return Result.fail({ value: entry, expected: limits.entryForm })
    normalised.push(value)
  }
  return Result.succeed([...new Set(normalised)])
}

const slugFlag = parsedFlag("slug", (text) =>
  isSlug(text)
    ? Result.succeed(text)
    : Result.fail({ expected: "1 to 63 characters of a-z, 0-9 and -, starting with a letter or digit, such as www" })).pipe(
    Flag.withMetavar("SLUG"),
    Flag.withDescription("Short name of the property, unique in its tenant (a-z, 0-9 and -, at most 63 characters)")
  )

const domainsFlag = parsedFlag("domains", (text) =>
  parseList(text, normaliseHost, {
    max: MAX_DOMAINS,
    listForm: "host names separated by commas, such as example.com,www.example.com",
    entryForm: "a host name such as www.example.com, without scheme, port or path"
  })).pipe(
    Flag.withMetavar("HOST,..."),
    Flag.withDescription(
      `Host names whose pages send events to this property, separated by commas (at most ${MAX_DOMAINS})`
    )
  )

const originsFlag = parsedFlag("origins", (text) =>
  parseList(text, normaliseOrigin, {
    max: MAX_ORIGINS,
    listForm: "origins separated by commas, such as https://example.com,http://localhost:3000",
    entryForm: "an origin such as https://www.example.com, without path or trailing text"
  })).pipe(
    Flag.withMetavar("ORIGIN,..."),
    Flag.withDescription("Origins allowed by CORS, separated by commas (default: https:// and each domain)"),
    Flag.optional
  )

const timezoneFlag = parsedFlag("timezone", (text) =>
  isTimeZone(text)
    ? Result.succeed(text)
    : Result.fail({ expected: "an IANA time zone name such as America/Toronto or UTC" })).pipe(
    Flag.withMetavar("ZONE"),
    Flag.withDescription(`IANA time zone in which the property's days start and end (default: ${DEFAULT_TIMEZONE})`),
    Flag.withDefault(DEFAULT_TIMEZONE)
  )

const thankYouUrlFlag = parsedFlag("thank-you-url", (text) =>
  thankYouUrlProblem(text, []) === "invalid_url"
    ? Result.fail({ expected: "an http or https URL such as https://example.com/thanks" })
    : Result.succeed(text)).pipe(
    Flag.withMetavar("URL"),
    Flag.withDescription("Page a form redirects to after a submission; it must be on one of --domains"),
    Flag.optional
  )

/** Inserts the property. A slug already used in the tenant fails with `CommandFailed`. */
const insertProperty = (
  client: pg.Client,
  tenantId: string,
  property: {
    readonly slug: string
    readonly name: string
    readonly domains: ReadonlyArray<string>
    readonly allowedOrigins: ReadonlyArray<string>
    readonly timezone: string
    readonly thankYouUrl: string | null
  }
) =>
  Effect.gen(function*() {
    yield* requireTenant(client, tenantId)
    const rows = yield* queryRows(
      client,
      PropertyRow,
      `INSERT INTO properties (tenant_id, slug, name, domains, allowed_origins, timezone, thank_you_url)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
      [tenantId, property.slug, property.name, property.domains, property.allowedOrigins, property.timezone,
        property.thankYouUrl]
    ).pipe(Effect.catchIf(
      (error) => error instanceof OwnerQueryError && error.code === UNIQUE_VIOLATION,
      () =>
        Effect.fail(
          new CommandFailed({
            message: `slug "${property.slug}" is already used by a property of tenant ${tenantId}. Choose another --slug.`
          })
        )
    ), Effect.catchIf(
      // The tenant was deleted between the check above and the insert.
      (error) => error instanceof OwnerQueryError && error.code === FOREIGN_KEY_VIOLATION,
      () => Effect.fail(new CommandFailed({ message: `tenant ${tenantId} not found` }))
    ))
    const created = rows[0]
    if (created === undefined) return yield* Effect.die("INSERT INTO properties returned no row")
    return created
  })

const create = Command.make(
  "create",
  {
    tenant: tenantFlag,
    slug: slugFlag,
    name: parsedFlag("name", lengthBetween(1, MAX_NAME_LENGTH)).pipe(
      Flag.withMetavar("NAME"),
      Flag.withDescription(`Display name of the property (1 to ${MAX_NAME_LENGTH} characters)`)
    ),
    domains: domainsFlag,
    origins: originsFlag,
    timezone: timezoneFlag,
    thankYouUrl: thankYouUrlFlag,
    json: jsonFlag
  },
  (input) =>
    Effect.gen(function*() {
      const property = yield* withOwnerDatabase((client) =>
        insertProperty(client, input.tenant, {
          slug: input.slug,
          name: input.name,
          domains: input.domains,
          allowedOrigins: Option.getOrElse(input.origins, () => defaultOrigins(input.domains)),
          timezone: input.timezone,
          thankYouUrl: Option.getOrNull(input.thankYouUrl)
        })
      )
      if (input.json) return yield* printJson({ property: propertyJson(property) })
      yield* Console.log([
        `Created property "${property.slug}" (${property.id}) for tenant ${property.tenantId}.`,
        `  domains:       ${property.domains.join(", ")}`,
        `  origins:       ${property.allowedOrigins.join(", ")}`,
        `  time zone:     ${property.timezone}`,
        `  thank-you URL: ${property.thankYouUrl ?? "-"}`
      ].join("\n"))
    })
).pipe(
  Command.validate(({ domains, thankYouUrl }) =>
    Option.isSome(thankYouUrl) && thankYouUrlProblem(thankYouUrl.value, domains) !== undefined
      ? Effect.fail(
        new CliError.ValidationError({
          message: `--thank-you-url must be on one of the property's domains (${domains.join(", ")}), ` +
            "so that the form redirect cannot send visitors to another site"
        })
      )
      : Effect.void
  ),
  Command.withDescription("Create a property (a site) for a tenant"),
  Command.withExamples([{
    command: "npm run cli -- property create --tenant TENANT_ID --slug www --name \"Marketing site\" " +
      "--domains example.com,www.example.com --timezone America/Toronto --thank-you-url https://example.com/thanks"
  }])
)

const list = Command.make("list", { tenant: tenantFlag, json: jsonFlag }, ({ json, tenant }) =>
  Effect.gen(function*() {
    const properties = yield* withOwnerDatabase((client) =>
      Effect.andThen(
        requireTenant(client, tenant),
        queryRows(client, PropertyRow, `SELECT ${COLUMNS} FROM properties WHERE tenant_id = $1 ORDER BY created_at`, [
          tenant
        ])
      )
    )
    if (json) return yield* printJson({ properties: properties.map(propertyJson) })
    if (properties.length === 0) return yield* Console.log(`Tenant ${tenant} has no properties.`)
    yield* printTable(
      ["SLUG", "NAME", "DOMAINS", "TIME ZONE", "ID", "CREATED"],
      properties.map((property) => [
        property.slug,
        property.name,
        property.domains.join(","),
        property.timezone,
        property.id,
        formatTime(property.createdAt)
      ])
    )
  })).pipe(
    Command.withDescription("List a tenant's properties, oldest first"),
    Command.withExamples([{ command: "npm run cli -- property list --tenant TENANT_ID" }])
  )

export const propertyCommand = Command.make("property").pipe(
  Command.withDescription("Create and list a tenant's properties (sites)"),
  Command.withSubcommands([create, list])
)
