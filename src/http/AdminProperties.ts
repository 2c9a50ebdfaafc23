/**
 * `GET /v1/admin/properties` and `POST /v1/admin/properties` (admin key): the
 * tenant's sites. The tenant always comes from the key, never from the body;
 * a `tenantId` sent in the body is ignored.
 */
import { Effect, Schema } from "effect"
import { HttpServerResponse } from "effect/http"
import { Properties, type Property } from "../services/Properties.ts"
import {
  DEFAULT_TIMEZONE,
  defaultOrigins,
  isTimeZone,
  MAX_DOMAIN_LENGTH,
  MAX_DOMAINS,
  MAX_NAME_LENGTH,
  MAX_THANK_YOU_URL_LENGTH,
  MAX_TIMEZONE_LENGTH,
  normaliseHost,
  SLUG_PATTERN,
  thankYouUrlProblem
} from "../services/PropertyRules.ts"
import { ApiError, type FieldProblem } from "./ApiError.ts"
import { requireKey } from "./Auth.ts"
import { decodeJsonText, readBodyText } from "./Body.ts"

const MAX_BODY_BYTES = 16 * 1024

const NewPropertyBody = Schema.Struct({
  slug: Schema.String.check(Schema.isPattern(SLUG_PATTERN)),
  name: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(MAX_NAME_LENGTH)),
  domains: Schema.Array(Schema.String.check(Schema.isMaxLength(MAX_DOMAIN_LENGTH))).check(
    Schema.isMinLength(1),
    Schema.isMaxLength(MAX_DOMAINS)
  ),
  timezone: Schema.optional(Schema.String.check(Schema.isMaxLength(MAX_TIMEZONE_LENGTH))),
  thankYouUrl: Schema.optional(Schema.String.check(Schema.isMaxLength(MAX_THANK_YOU_URL_LENGTH)))
})

export const listProperties = Effect.gen(function*() {
  const key = yield* requireKey("admin")
  const properties = yield* Properties
  const rows = yield* properties.list(key.tenantId, key.propertyId)
  return HttpServerResponse.jsonUnsafe({ properties: rows.map(toJson) })
})

export const createProperty = Effect.gen(function*() {
  const key = yield* requireKey("admin")
  if (key.propertyId !== null) {
    return yield* new ApiError({ status: 403, code: "key_limited_to_property" })
  }
  const body = yield* decodeJsonText(NewPropertyBody, yield* readBodyText(MAX_BODY_BYTES))
  const domains = body.domains.map(normaliseHost)
  const timezone = body.timezone ?? DEFAULT_TIMEZONE
  const problems = [
    ...domains.flatMap((domain, index) =>
      domain === undefined ? [{ path: `domains[${index}]`, code: "invalid_domain" }] : []
    ),
    ...(isTimeZone(timezone) ? [] : [{ path: "timezone", code: "invalid_timezone" }]),
    ...thankYouUrlFields(body.thankYouUrl, domains)
  ]
  if (problems.length > 0) {
    return yield* new ApiError({ status: 400, code: "invalid_request", fields: problems })
  }
  const validDomains = domains.filter((domain): domain is string => domain !== undefined)
  const properties = yield* Properties
  const created = yield* properties.create(key.tenantId, {
    slug: body.slug,
    name: body.name,
    domains: validDomains,
    allowedOrigins: defaultOrigins(validDomains),
    timezone,
    thankYouUrl: body.thankYouUrl ?? null
  }).pipe(
    Effect.catchTag("SlugTaken", (error) =>
      Effect.fail(new ApiError({ status: 409, code: "slug_taken", params: { slug: error.slug } })))
  )
  yield* Effect.logInfo("property created").pipe(
    Effect.annotateLogs({ tenantId: key.tenantId, propertyId: created.id })
  )
  return HttpServerResponse.jsonUnsafe({ property: toJson(created) }, { status: 201 })
})

const toJson = (property: Property) => ({
  id: property.id,
  slug: property.slug,
  name: property.name,
  domains: property.domains,
  allowedOrigins: property.allowedOrigins,
  timezone: property.timezone,
  thankYouUrl: property.thankYouUrl,
  createdAt: property.createdAt.toISOString()
})

const thankYouUrlFields = (
  url: string | undefined,
  domains: ReadonlyArray<string | undefined>
): ReadonlyArray<FieldProblem> => {
  if (url === undefined) return []
  const problem = thankYouUrlProblem(url, domains.filter((domain): domain is string => domain !== undefined))
  return problem === undefined ? [] : [{ path: "thankYouUrl", code: problem }]
}
