/**
 * A person's PIPEDA requests, made by the operator with an admin key:
 *
 * - `POST /v1/leads/delete` with `{"email": ...}` erases everything stored
 *   about that address (see `Erasure` for what that covers) in one
 *   transaction, records the erasure, and returns the counts removed. A
 *   repeat returns zero counts and the time of the erasure on record.
 * - `GET /v1/leads/export?email=` returns everything stored about that
 *   address as one JSON document, or 404 when nothing is stored.
 *
 * An admin key limited to one property gets 403 when the person's data
 * reaches beyond that property; a tenant-wide key must make the request.
 */
import { Effect, Schema } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { parseEmailAddress } from "../services/EmailAddress.ts"
import { Erasure } from "../services/Erasure.ts"
import { VisitorActors } from "../streams/VisitorActors.ts"
import { ApiError } from "./ApiError.ts"
import { requireKey } from "./Auth.ts"
import { decodeJsonText, readBodyText } from "./Body.ts"

const MAX_BODY_BYTES = 8 * 1024

const EmailBody = Schema.Struct({ email: Schema.String.check(Schema.isMaxLength(2048)) })

export const deleteLead = Effect.gen(function*() {
  const key = yield* requireKey("admin")
  const body = yield* decodeJsonText(EmailBody, yield* readBodyText(MAX_BODY_BYTES))
  const email = yield* normalizedEmail(body.email)
  const erasure = yield* Erasure
  const result = yield* erasure.erase(key.tenantId, key.propertyId, email).pipe(
    Effect.catchTag("LeadOutsideKeyProperty", () => Effect.fail(outsideProperty()))
  )
  // After the commit, so that no actor keeps an erased session in memory and
  // writes it back with the visitor's next event.
  // NOTE: a beacon already queued in the event writer when the erasure
  // commits still writes its session back, under a new visitor row.
  const actors = yield* VisitorActors
  yield* actors.evict(result.erasedVisitors)
  return HttpServerResponse.jsonUnsafe({
    erased: true,
    removed: result.removed,
    erasureOnRecord: true,
    erasedAt: result.erasedAt.toISOString()
  }, { headers: { "cache-control": "no-store" } })
})

export const exportLead = Effect.gen(function*() {
  const key = yield* requireKey("admin")
  const request = yield* HttpServerRequest.HttpServerRequest
  const queryStart = request.url.indexOf("?")
  const raw = queryStart === -1 ? null : new URLSearchParams(request.url.slice(queryStart + 1)).get("email")
  if (raw === null) {
    return yield* new ApiError({
      status: 400,
      code: "invalid_request",
      fields: [{ path: "email", code: "missing" }]
    })
  }
  const email = yield* normalizedEmail(raw)
  const erasure = yield* Erasure
  const document = yield* erasure.exportPerson(key.tenantId, key.propertyId, email).pipe(
    Effect.catchTags({
      LeadNotFound: () => Effect.fail(new ApiError({ status: 404, code: "lead_not_found" })),
      LeadOutsideKeyProperty: () => Effect.fail(outsideProperty())
    })
  )
  return HttpServerResponse.jsonUnsafe(
    { ...document, exportedAt: document.exportedAt.toISOString() },
    { headers: { "cache-control": "no-store" } }
  )
})

const normalizedEmail = (input: string) => {
  const parsed = parseEmailAddress(input)
  return parsed.ok
    ? Effect.succeed(parsed.normalized)
    : Effect.fail(new ApiError({
      status: 400,
      code: "invalid_request",
      fields: [{ path: "email", code: "invalid_email", params: { reason: parsed.reason } }]
    }))
}

const outsideProperty = () => new ApiError({ status: 403, code: "lead_outside_key_property" })
