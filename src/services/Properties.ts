/**
 * A tenant's properties (sites): listing and creation, always inside the
 * tenant's transaction, so row-level security decides what exists.
 */
import { Context, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { TenantDb } from "./TenantDb.ts"

export interface Property {
  readonly id: string
  readonly slug: string
  readonly name: string
  readonly domains: ReadonlyArray<string>
  readonly allowedOrigins: ReadonlyArray<string>
  readonly timezone: string
  readonly thankYouUrl: string | null
  readonly createdAt: Date
}

export interface NewProperty {
  readonly slug: string
  readonly name: string
  readonly domains: ReadonlyArray<string>
  readonly allowedOrigins: ReadonlyArray<string>
  readonly timezone: string
  readonly thankYouUrl: string | null
}

export class SlugTaken extends Schema.TaggedError<SlugTaken>()("SlugTaken", { slug: Schema.String }) {}

export interface PropertiesShape {
  /** The tenant's properties; with `propertyId`, only that one. */
  readonly list: (tenantId: string, propertyId: string | null) => Effect.Effect<ReadonlyArray<Property>>
  readonly create: (tenantId: string, property: NewProperty) => Effect.Effect<Property, SlugTaken>
}

export class Properties extends Context.Service<Properties, PropertiesShape>()("porchlight/services/Properties") {
  static readonly layer = Layer.effect(
    Properties,
    Effect.gen(function*() {
      const sql = yield* SqlClient
      const tenants = yield* TenantDb
      const columns = sql.unsafe(`id, slug, name, domains, allowed_origins AS "allowedOrigins", timezone,
        thank_you_url AS "thankYouUrl", created_at AS "createdAt"`)

      const list = (tenantId: string, propertyId: string | null) =>
        tenants.withTenant(
          tenantId,
          propertyId === null
            ? sql<Property>`SELECT ${columns} FROM properties ORDER BY created_at`
            : sql<Property>`SELECT ${columns} FROM properties WHERE id = ${propertyId}`
        ).pipe(Effect.orDie)

      const create = (tenantId: string, property: NewProperty) =>
        tenants.withTenant(
          tenantId,
          sql<Property>`
            INSERT INTO properties (tenant_id, slug, name, domains, allowed_origins, timezone, thank_you_url)
            VALUES (${tenantId}, ${property.slug}, ${property.name}, ${property.domains},
                    ${property.allowedOrigins}, ${property.timezone}, ${property.thankYouUrl})
            RETURNING ${columns}`
        ).pipe(
          Effect.flatMap((rows) => rows[0] === undefined ? Effect.die("INSERT returned no row") : Effect.succeed(rows[0])),
          Effect.catchTag("SqlError", (error) =>
            error.reason._tag === "UniqueViolation"
              ? Effect.fail(new SlugTaken({ slug: property.slug }))
              : Effect.die(error))
        )

      return Properties.of({ list, create })
    })
  )
}
