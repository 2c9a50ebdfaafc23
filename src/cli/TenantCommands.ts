/**
 * `tenant create` and `tenant list`. Tenants are created only here (or by
 * the first start's bootstrap), because the service's database role may
 * not insert into `tenants`.
 */
import { Console, Effect, Schema } from "effect"
import { Command, Flag } from "effect/cli"
import type pg from "pg"
import { CommandFailed } from "./Failures.ts"
import { jsonFlag, lengthBetween, parsedFlag } from "./Flags.ts"
import { formatTime, isoTime, printJson, printTable } from "./Output.ts"
import { queryRows, withOwnerDatabase } from "./OwnerDatabase.ts"

/** Same limit as the CHECK constraint on `tenants.name`. */
const MAX_TENANT_NAME_LENGTH = 200

const TenantRow = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  createdAt: Schema.Date,
  properties: Schema.Number
})
type TenantRow = typeof TenantRow.Type

const tenantJson = (tenant: TenantRow) => ({
  id: tenant.id,
  name: tenant.name,
  properties: tenant.properties,
  createdAt: isoTime(tenant.createdAt)
})

/** Returns the tenant's name, or fails with "tenant … not found". */
export const requireTenant = (client: pg.Client, tenantId: string) =>
  queryRows(client, Schema.Struct({ name: Schema.String }), "SELECT name FROM tenants WHERE id = $1", [tenantId]).pipe(
    Effect.flatMap((rows) =>
      rows[0] === undefined
        ? Effect.fail(new CommandFailed({ message: `tenant ${tenantId} not found. Run "tenant list" to see the ids.` }))
        : Effect.succeed(rows[0].name)
    )
  )

const create = Command.make(
  "create",
  {
    name: parsedFlag("name", lengthBetween(1, MAX_TENANT_NAME_LENGTH)).pipe(
      Flag.withMetavar("NAME"),
      Flag.withDescription(`Display name of the tenant (1 to ${MAX_TENANT_NAME_LENGTH} characters)`)
    ),
    json: jsonFlag
  },
  ({ json, name }) =>
    Effect.gen(function*() {
      const rows = yield* withOwnerDatabase((client) =>
        queryRows(
          client,
          TenantRow,
          `INSERT INTO tenants (name) VALUES ($1)
           RETURNING id, name, created_at AS "createdAt", 0 AS properties`,
          [name]
        )
      )
      const tenant = rows[0]
      if (tenant === undefined) return yield* Effect.die("INSERT INTO tenants returned no row")
      if (json) return yield* printJson({ tenant: tenantJson(tenant) })
      yield* Console.log(`Created tenant ${tenant.id} (${JSON.stringify(tenant.name)}).`)
    })
).pipe(
  Command.withDescription("Create a tenant and print its id"),
  Command.withExamples([{ command: `npm run cli -- tenant create --name "Acme Inc"` }])
)

const list = Command.make("list", { json: jsonFlag }, ({ json }) =>
  Effect.gen(function*() {
    const tenants = yield* withOwnerDatabase((client) =>
      queryRows(
        client,
        TenantRow,
        `SELECT t.id, t.name, t.created_at AS "createdAt", count(p.id)::int AS properties
         FROM tenants t LEFT JOIN properties p ON p.tenant_id = t.id
         GROUP BY t.id ORDER BY t.created_at`,
        []
      )
    )
    if (json) return yield* printJson({ tenants: tenants.map(tenantJson) })
    if (tenants.length === 0) return yield* Console.log("No tenants.")
    yield* printTable(
      ["ID", "NAME", "PROPERTIES", "CREATED"],
      tenants.map((tenant) => [tenant.id, tenant.name, String(tenant.properties), formatTime(tenant.createdAt)])
    )
  })).pipe(
    Command.withDescription("List every tenant, oldest first"),
    Command.withExamples([{ command: "npm run cli -- tenant list --json" }])
  )

export const tenantCommand = Command.make("tenant").pipe(
  Command.withDescription("Create and list tenants"),
  Command.withSubcommands([create, list])
)
