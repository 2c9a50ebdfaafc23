/**
 * `GET` and `POST /v1/leads/unsubscribe`: withdrawal of a lead's consent.
 *
 * - `GET ?token=` shows a localised page with a confirm button and changes
 *   nothing, because mail scanners open links and must not unsubscribe
 *   people. An invalid token gets a localised 400 page.
 * - `POST` with `token` in the query string (RFC 8058 one-click sends the
 *   body `List-Unsubscribe=One-Click` to the URL of the `List-Unsubscribe`
 *   header) or in a JSON, form or multipart body withdraws consent at once.
 *   The token is the authorisation, so no key or cookie is needed. A browser
 *   (an `Accept` that names HTML, as the confirm page's form sends) gets the
 *   localised confirmation page, any other client `{"unsubscribed": true}`.
 * - `POST` without a token needs an admin key and `{"email": ...}`.
 *
 * Every success is repeatable: a second request records nothing new and
 * gets the same response.
 */
import { Effect, Option, Schema } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { AppConfig } from "../services/AppConfig.ts"
import { parseEmailAddress } from "../services/EmailAddress.ts"
import { Enrichment } from "../services/Enrichment.ts"
import { type Language, translate } from "../services/I18n.ts"
import { Unsubscribe } from "../services/Unsubscribe.ts"
import { UnsubscribeTokens } from "../services/UnsubscribeTokens.ts"
import { ApiError, languageOf } from "./ApiError.ts"
import { requireKey } from "./Auth.ts"
import { decodeValue, readBodyText } from "./Body.ts"
import { clientAddress } from "./ClientAddress.ts"
import { escapeHtml, htmlPage } from "./Html.ts"

/** RFC 8058 bodies are a few dozen bytes, and an admin body contains one address. */
const MAX_BODY_BYTES = 8 * 1024

export const UNSUBSCRIBE_PATH = "/v1/leads/unsubscribe"

const AdminBody = Schema.Struct({ email: Schema.String.check(Schema.isMaxLength(2048)) })

export const showUnsubscribePage = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const language = languageOf(request)
  const contact = (yield* AppConfig).privacyContactEmail
  const token = queryParameter(request.url, "token")
  // Only the signature is checked: the page reads and writes nothing.
  if (token === undefined || !(yield* isSignedToken(token))) {
    return page(400, language, "unsubscribe_invalid", contact)
  }
  return page(200, language, "unsubscribe", contact, confirmForm(language, token))
})

export const postUnsubscribe = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const language = languageOf(request)
  const wantsHtml = acceptsHtml(request.headers["accept"])
  const text = yield* readBodyText(MAX_BODY_BYTES)
  const queryToken = queryParameter(request.url, "token")
  // With the token in the query string the body is not needed: one-click
  // senders may post it as multipart, form or anything else.
  const fields = queryToken === undefined ? yield* parseFields(request.headers["content-type"], text) : {}
  const bodyToken = typeof fields["token"] === "string" ? fields["token"] : undefined
  const token = queryToken ?? bodyToken
  const ipHashHex = yield* requestIpHash(request)
  const unsubscribe = yield* Unsubscribe

  if (token !== undefined) {
    const contact = (yield* AppConfig).privacyContactEmail
    const valid = yield* unsubscribe.byToken(token, ipHashHex).pipe(
      Effect.as(true),
      Effect.catchTag("InvalidUnsubscribeToken", () => Effect.succeed(false))
    )
    if (!valid) {
      if (wantsHtml) return page(400, language, "unsubscribe_invalid", contact)
      return yield* new ApiError({ status: 400, code: "invalid_unsubscribe_token" })
    }
    if (wantsHtml) return page(200, language, "unsubscribe_done", contact)
    return HttpServerResponse.jsonUnsafe({ unsubscribed: true }, { headers: { "cache-control": "no-store" } })
  }

  const key = yield* requireKey("admin")
  const body = yield* decodeValue(AdminBody, fields)
  const email = parseEmailAddress(body.email)
  if (!email.ok) {
    return yield* new ApiError({
      status: 400,
      code: "invalid_request",
      fields: [{ path: "email", code: "invalid_email", params: { reason: email.reason } }]
    })
  }
  const withdrawal = yield* unsubscribe.byEmail(key.tenantId, key.propertyId, email.normalized, ipHashHex).pipe(
    Effect.catchTags({
      LeadNotFound: () => Effect.fail(new ApiError({ status: 404, code: "lead_not_found" })),
      LeadOutsideKeyProperty: () => Effect.fail(new ApiError({ status: 403, code: "lead_outside_key_property" }))
    })
  )
  return HttpServerResponse.jsonUnsafe({
    unsubscribed: true,
    leadId: withdrawal.leadId,
    withdrawnAt: withdrawal.withdrawnAt?.toISOString() ?? null
  })
})

const isSignedToken = (token: string) =>
  UnsubscribeTokens.use((tokens) =>
    tokens.verify(token).pipe(
      Effect.as(true),
      Effect.catchTag("InvalidUnsubscribeToken", () => Effect.succeed(false))
    )
  )

/** Reads the fields of a JSON object, a urlencoded form or a multipart form. An empty body has none. */
const parseFields = (
  contentType: string | undefined,
  text: string
): Effect.Effect<Readonly<Record<string, unknown>>, ApiError> => {
  const mediaType = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? ""
  if (text.trim() === "") return Effect.succeed({})
  if (mediaType === "application/json" || mediaType === "") {
    const parsed = parseJsonObject(text)
    return parsed === undefined ? Effect.fail(new ApiError({ status: 400, code: "invalid_json" })) : Effect.succeed(parsed)
  }
  if (mediaType === "application/x-www-form-urlencoded") {
    return Effect.succeed(Object.fromEntries(new URLSearchParams(text)))
  }
  if (mediaType === "multipart/form-data" && contentType !== undefined) {
    return Effect.tryPromise({
      try: () => new Response(text, { headers: { "content-type": contentType } }).formData(),
      catch: () => new ApiError({ status: 400, code: "unreadable_body" })
    }).pipe(Effect.map((form) => {
      const fields: Record<string, string> = {}
      for (const [name, value] of form) if (typeof value === "string") fields[name] = value
      return fields
    }))
  }
  return Effect.fail(new ApiError({ status: 415, code: "unsupported_media_type", params: { mediaType } }))
}

const parseJsonObject = (text: string): Readonly<Record<string, unknown>> | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === "object" && value !== null && !Array.isArray(value) ? { ...value } : undefined
  } catch {
    return undefined
  }
}

const queryParameter = (url: string, name: string): string | undefined => {
  const queryStart = url.indexOf("?")
  if (queryStart === -1) return undefined
  return new URLSearchParams(url.slice(queryStart + 1)).get(name) ?? undefined
}

/** True when the client lists HTML in `Accept`, as browsers do for pages and form posts. */
const acceptsHtml = (accept: string | undefined): boolean =>
  accept !== undefined && /(^|,)\s*(text\/html|application\/xhtml\+xml)\s*(;|,|$)/i.test(accept)

/** The keyed hash (hex) of the client's address, as ingest stores it, or null when it is unknown. */
const requestIpHash = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const address = clientAddress(request, yield* AppConfig)
    if (address === undefined) return null
    return (yield* Enrichment).hash(address)
  })

/**
 * Headers added to the shared page headers: the token in the page's URL
 * must not leak to other sites through Referer, and the confirm button may
 * not be framed by another site.
 */
const UNSUBSCRIBE_PAGE_HEADERS = {
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "x-robots-tag": "noindex"
}

type PageName = "unsubscribe" | "unsubscribe_done" | "unsubscribe_invalid"

/** A localised page: `page.<name>.title` as its heading, `page.<name>.body`, then `extra` (escaped HTML). */
const page = (
  status: number,
  language: Language,
  name: PageName,
  contact: Option.Option<string>,
  extra = ""
) =>
  HttpServerResponse.setHeaders(
    htmlPage({
      language,
      status,
      title: translate(language, `page.${name}.title`),
      body: `<p>${escapeHtml(translate(language, `page.${name}.body`))}</p>
${extra}${contactParagraph(language, contact)}`
    }),
    UNSUBSCRIBE_PAGE_HEADERS
  )

/** The form posts the token back with the page's language, so the confirmation speaks it too. */
const confirmForm = (language: Language, token: string) =>
  `<form method="post" action="${UNSUBSCRIBE_PATH}?lang=${language}">
<input type="hidden" name="token" value="${escapeHtml(token)}">
<button type="submit">${escapeHtml(translate(language, "page.unsubscribe.button"))}</button>
</form>
`

/** Placeholder for the address, replaced by a link after the sentence is escaped. */
const EMAIL_SLOT = "\u0000email\u0000"

const contactParagraph = (language: Language, contact: Option.Option<string>): string => {
  if (Option.isNone(contact)) return ""
  const address = escapeHtml(contact.value)
  const sentence = escapeHtml(translate(language, "page.unsubscribe.privacy", { email: EMAIL_SLOT }))
  return `<p>${sentence.replace(EMAIL_SLOT, `<a href="mailto:${address}">${address}</a>`)}</p>`
}
