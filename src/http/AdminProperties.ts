/**
 * `GET /v1/admin/properties` and `POST /v1/admin/properties` (admin key): the
 * tenant's sites. The tenant always comes from the key, never from the body;
 * a `tenantId` sent in the body is ignored.
 */
import { Effect, Schema } from "effect"
import { HttpServerResponse } from "effect/http"
import { Properties, type Property } from "../services/Properties.ts"
import { ApiError, type FieldProblem } from "./ApiError.ts"
import { requireKey } from "./Auth.ts"
import { decodeJsonText, readBodyText } from "./Body.ts"

const MAX_BODY_BYTES = 16 * 1024

const NewPropertyBody = Schema.Struct({
  slug: Schema.String.check(Schema.isPattern(/^[a-z0-9][a-z0-9-]{0,62}$/)),
  name: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200)),
  domains: Schema.Array(Schema.String.check(Schema.isMaxLength(253))).check(
    Schema.isMinLength(1),
    Schema.isMaxLength(20)
  ),
  timezone: Schema.optional(Schema.String.check(Schema.isMaxLength(64))),
  thankYouUrl: Schema.optional(Schema.String.check(Schema.isMaxLength(2048)))
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
  const timezone = body.timezone ?? "UTC"
  const problems = [
    ...domains.flatMap((domain, index) =>
      domain === undefined ? [{ path: `domains[${index}]`, code: "invalid_domain" }] : []
    ),
    ...(isTimeZone(timezone) ? [] : [{ path: "timezone", code: "invalid_timezone" }]),
    ...thankYouUrlProblems(body.thankYouUrl, domains)
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
    allowedOrigins: validDomains.map((domain) => `https://${domain}`),
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

/** A bare host name in lower case and ASCII (punycode), or undefined when it is not one. */
const normaliseHost = (text: string): string | undefined => {
  const candidate = text.trim().toLowerCase()
  if (candidate === "" || /[/:?#@\s]/.test(candidate)) return undefined
  if (!URL.canParse(`https://${candidate}/`)) return undefined
  const host = new URL(`https://${candidate}/`).hostname
  return host.includes(".") || host === "localhost" ? host : undefined
}

const isTimeZone = (name: string) => {
  try {
    new Intl.DateTimeFormat("en", { timeZone: name })
    return true
  } catch {
    return false
  }
}

/** The thank-you page must be on one of the property's own domains (no open redirect). */
const thankYouUrlProblems = (
  url: string | undefined,
  domains: ReadonlyArray<string | undefined>
): ReadonlyArray<FieldProblem> => {
  if (url === undefined) return []
  if (!URL.canParse(url)) return [{ path: "thankYouUrl", code: "invalid_url" }]
  const parsed = new URL(url)
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return [{ path: "thankYouUrl", code: "invalid_url" }]
  return domains.includes(parsed.hostname) ? [] : [{ path: "thankYouUrl", code: "not_on_property_domain" }]
}
