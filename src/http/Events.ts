/**
 * `POST /v1/events` (ingest key): one event, or `{"events": [...]}` with at
 * most 50, as JSON sent with `application/json` or `text/plain` (what
 * `navigator.sendBeacon` sends for a string). The key comes in `x-api-key`
 * or as `key` in the body. Each event is validated alone: in a batch a bad
 * event is rejected and counted with its reason while the others go on. The
 * 202 is sent once the accepted events are committed.
 */
import { Clock, Effect } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { AppConfig } from "../services/AppConfig.ts"
import { Enrichment } from "../services/Enrichment.ts"
import { RateLimiter } from "../services/RateLimiter.ts"
import type { EnrichedEvent, RejectionRow } from "../streams/IngestMessages.ts"
import { IngestPipeline } from "../streams/IngestPipeline.ts"
import { ApiError } from "./ApiError.ts"
import { requireKey } from "./Auth.ts"
import { readBodyText } from "./Body.ts"
import { clientAddress } from "./ClientAddress.ts"
import { corsHeaders } from "./Cors.ts"
import { type EventFields, validateEvent } from "./EventSchema.ts"

export const MAX_BODY_BYTES = 64 * 1024
export const MAX_EVENTS_PER_REQUEST = 50

export const postEvents = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  yield* checkContentType(request.headers["content-type"])
  const body = parseBody(yield* readBodyText(MAX_BODY_BYTES))
  if (body === undefined) return yield* new ApiError({ status: 400, code: "invalid_json" })
  if (body.events.length === 0 || body.events.length > MAX_EVENTS_PER_REQUEST) {
    return yield* new ApiError({ status: 400, code: "invalid_event_count", params: { max: MAX_EVENTS_PER_REQUEST } })
  }
  const key = yield* requireKey("ingest", body.key)
  const propertyId = key.propertyId
  if (propertyId === null) return yield* new ApiError({ status: 403, code: "wrong_scope" })
  const receivedAt = yield* Clock.currentTimeMillis
  const config = yield* AppConfig
  const enrichment = yield* Enrichment
  const ip = clientAddress(request, config)
  const facts = {
    ip,
    userAgent: request.headers["user-agent"],
    clientHints: request.headers,
    receivedAt,
    propertyDomains: key.propertyDomains
  }
  const limiter = yield* RateLimiter
  const allowance = yield* limiter.take(
    `events:${propertyId}:${ip === undefined ? "none" : enrichment.ipHash(facts)}`,
    config.ingestRateLimitPerMinute,
    60_000
  )
  if (!allowance.allowed) {
    return yield* new ApiError({
      status: 429,
      code: "rate_limited",
      headers: { "retry-after": String(allowance.retryAfterSeconds) }
    })
  }

  const rejections: Array<RejectionRow> = []
  const problems: Array<{ index: number; fields: ReadonlyArray<{ path: string; code: string }> }> = []
  const accepted: Array<EventFields> = []
  body.events.forEach((raw, index) => {
    const result = validateEvent(raw)
    if (result.ok) {
      accepted.push(result.event)
      return
    }
    problems.push({ index, fields: result.fields })
    rejections.push({
      tenantId: key.tenantId,
      propertyId,
      receivedAt,
      reason: result.reason,
      field: result.fields[0]?.path ?? null
    })
  })

  const visitors = new Map<string, Array<EnrichedEvent>>()
  for (const event of accepted) {
    const group = visitors.get(event.anonId) ?? []
    group.push(enrichment.enrich(event, facts))
    visitors.set(event.anonId, group)
  }

  const pipeline = yield* IngestPipeline
  yield* pipeline.ingest({ tenantId: key.tenantId, propertyId, visitors, rejections }).pipe(
    Effect.mapError((error) =>
      new ApiError({
        status: 503,
        code: error.reason === "database_unavailable" ? "database_unavailable" : "ingest_busy",
        headers: { "retry-after": error.reason === "database_unavailable" ? "5" : "1" }
      })
    )
  )

  const cors = corsHeaders(request.headers["origin"])
  if (body.single && problems.length > 0) {
    return yield* new ApiError({
      status: 400,
      code: "invalid_event",
      fields: problems[0]?.fields ?? [],
      headers: cors
    })
  }
  return HttpServerResponse.jsonUnsafe(
    {
      accepted: accepted.length,
      rejected: problems.length,
      ...(problems.length > 0 ? { rejections: problems } : {})
    },
    { status: 202, headers: cors }
  )
})

interface ParsedBody {
  readonly key: string | undefined
  readonly events: ReadonlyArray<unknown>
  /** True for a lone event, which gets 400 (not 202) when it is invalid. */
  readonly single: boolean
}

/** Reads the envelope: a lone event or `{"events": [...]}`, and an optional `key`. */
const parseBody = (text: string): ParsedBody | undefined => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined
  const key = "key" in value && typeof value.key === "string" ? value.key : undefined
  if ("events" in value) {
    return Array.isArray(value.events) ? { key, events: value.events, single: false } : undefined
  }
  return { key, events: [value], single: true }
}

const checkContentType = (contentType: string | undefined) => {
  const mediaType = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? ""
  return mediaType === "" || mediaType === "application/json" || mediaType === "text/plain"
    ? Effect.void
    : Effect.fail(new ApiError({ status: 415, code: "unsupported_media_type", params: { mediaType } }))
}
