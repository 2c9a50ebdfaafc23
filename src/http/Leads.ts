/**
 * `POST /v1/leads/capture` (ingest key). JSON from the page's script gets
 * 201 for a new lead or 200 for a known one. A plain HTML form post
 * (`application/x-www-form-urlencoded`, JavaScript off) gets 303 to the
 * property's thank-you page or to a localised confirmation page. When its
 * input is invalid it gets a localised HTML page that names the problem.
 * Every success is sent only after the lead is committed.
 */
import { Clock, Effect } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { randomUUID } from "node:crypto"
import { AppConfig } from "../services/AppConfig.ts"
import { ChallengeVerifier } from "../services/ChallengeVerifier.ts"
import { parseEmailAddress } from "../services/EmailAddress.ts"
import { Enrichment } from "../services/Enrichment.ts"
import { type Language, translate } from "../services/I18n.ts"
import { Leads } from "../services/Leads.ts"
import { Properties } from "../services/Properties.ts"
import { RateLimiter } from "../services/RateLimiter.ts"
import { IngestPipeline } from "../streams/IngestPipeline.ts"
import { ApiError, type FieldProblem, languageOf } from "./ApiError.ts"
import { requireKey } from "./Auth.ts"
import { readBodyText } from "./Body.ts"
import { corsHeaders } from "./Cors.ts"
import { clientAddress } from "./ClientAddress.ts"
import { escapeHtml, htmlPage } from "./Html.ts"

const MAX_BODY_BYTES = 16 * 1024
/** Free-text fields kept with a submission, with their maximum lengths. */
const ALLOWED_FIELDS: Readonly<Record<string, number>> = {
  name: 200,
  company: 200,
  jobTitle: 200,
  phone: 40,
  message: 2000
}

type Mode = "json" | "form"

export const captureLead = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const language = languageOf(request)
  const mode = modeOf(request.headers["content-type"])
  if (mode === undefined) {
    return yield* new ApiError({
      status: 415,
      code: "unsupported_media_type",
      params: { mediaType: request.headers["content-type"] ?? "" }
    })
  }
  return yield* captureIn(mode, request).pipe(
    Effect.catchTag("ApiError", (error) =>
      mode === "form" ? Effect.succeed(formErrorPage(error, language, request)) : Effect.fail(error))
  )
})

const captureIn = (mode: Mode, request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const language = languageOf(request)
    const fields = parseFields(mode, yield* readBodyText(MAX_BODY_BYTES))
    if (fields === undefined) return yield* new ApiError({ status: 400, code: "invalid_json" })
    const key = yield* requireKey("ingest", fields["key"])
    const propertyId = key.propertyId
    if (propertyId === null) return yield* new ApiError({ status: 403, code: "wrong_scope" })
    const config = yield* AppConfig
    const enrichment = yield* Enrichment
    const ip = clientAddress(request, config)
    const ipHash = ip === undefined ? null : enrichment.hash(ip)
    const leads = yield* Leads

    if ((fields["website"] ?? "") !== "") {
      // A filled honeypot means a bot: respond as if accepted and keep only the count.
      yield* leads.countSpam(key.tenantId, propertyId, "honeypot").pipe(Effect.orDie)
      yield* Effect.logInfo("lead submission dropped").pipe(
        Effect.annotateLogs({ reason: "honeypot", tenantId: key.tenantId, propertyId })
      )
      return yield* success(mode, true, key.tenantId, propertyId, language, request)
    }

    const limiter = yield* RateLimiter
    yield* limit(limiter.take(`ip:${key.tenantId}:${ipHash ?? "none"}`, config.leadRateLimitPerMinute, 60_000))
    const input = yield* validate(fields, language)
    yield* limit(limiter.take(
      `email:${key.tenantId}:${enrichment.hash(input.email.normalized)}`,
      config.leadRateLimitPerEmailHour,
      3_600_000
    ))
    const verifier = yield* ChallengeVerifier
    if (verifier.enabled && !(yield* verifier.verify(fields["challenge"], ipHash))) {
      yield* leads.countSpam(key.tenantId, propertyId, "challenge_failed").pipe(Effect.orDie)
      return yield* new ApiError({ status: 403, code: "challenge_failed", fields: [{ path: "challenge", code: "invalid" }] })
    }

    const now = yield* Clock.currentTimeMillis
    const anonId = input.anonId ?? (mode === "form" ? `nojs-${randomUUID()}` : null)
    const result = yield* leads.capture({
      tenantId: key.tenantId,
      propertyId,
      emailDisplay: input.email.display,
      emailNormalized: input.email.normalized,
      anonId,
      expressConsent: input.expressConsent,
      purpose: input.purpose,
      formName: input.formName,
      fields: input.extra,
      locale: input.locale,
      ipHash,
      uaHash: enrichment.hash(request.headers["user-agent"] ?? ""),
      now
    }).pipe(Effect.orDie)
    yield* Effect.logInfo("lead captured").pipe(Effect.annotateLogs({
      tenantId: key.tenantId,
      propertyId,
      leadId: result.leadId,
      created: result.created,
      consent: result.consentStatus,
      mode
    }))

    if (mode === "form" && anonId !== null) {
      yield* recordPlainFormConversion(key.tenantId, propertyId, anonId, input.formName, key.propertyDomains, request)
    }
    return yield* success(mode, result.created, key.tenantId, propertyId, language, request)
  })

/**
 * A plain form runs no script, so no `form_submit` beacon comes from the
 * page; the capture records that conversion in the visitor's session. The
 * JSON path does not, because its page's script already sent one.
 */
const recordPlainFormConversion = (
  tenantId: string,
  propertyId: string,
  anonId: string,
  formName: string,
  propertyDomains: ReadonlyArray<string>,
  request: HttpServerRequest.HttpServerRequest
) =>
  Effect.gen(function*() {
    const enrichment = yield* Enrichment
    const pipeline = yield* IngestPipeline
    const config = yield* AppConfig
    const receivedAt = yield* Clock.currentTimeMillis
    const event = enrichment.enrich({
      eventType: "form_submit",
      path: pathOfReferer(request.headers["referer"], propertyDomains) ?? "/",
      props: { formName }
    }, {
      ip: clientAddress(request, config),
      userAgent: request.headers["user-agent"],
      clientHints: request.headers,
      receivedAt,
      propertyDomains
    })
    yield* pipeline.ingest({ tenantId, propertyId, visitors: new Map([[anonId, [event]]]), rejections: [] }).pipe(
      // The lead is committed; a lost conversion event must not fail it.
      Effect.catchTag("WriteFailed", (error) =>
        Effect.logWarning("plain form conversion not recorded").pipe(
          Effect.annotateLogs({ tenantId, propertyId, reason: error.reason })
        ))
    )
  })

interface ValidLead {
  readonly email: { readonly display: string; readonly normalized: string }
  readonly anonId: string | null
  readonly expressConsent: boolean
  readonly purpose: string | null
  readonly formName: string
  readonly locale: string
  readonly extra: Readonly<Record<string, string>>
}

const validate = (fields: Readonly<Record<string, string>>, language: Language) =>
  Effect.gen(function*() {
    const problems: Array<FieldProblem> = []
    const email = parseEmailAddress(fields["email"] ?? "")
    if (!email.ok) {
      problems.push({
        path: "email",
        code: email.reason === "empty" ? "missing" : "invalid_email",
        params: { reason: email.reason }
      })
    }
    const formName = (fields["formName"] ?? "").trim()
    if (formName === "") problems.push({ path: "formName", code: "missing" })
    else if (!/^[\w.:-]{1,64}$/.test(formName)) problems.push({ path: "formName", code: "invalid" })
    const consent = (fields["consent"] ?? "").trim()
    if (consent !== "" && consent !== "express") problems.push({ path: "consent", code: "invalid" })
    const anonId = (fields["anonId"] ?? "").trim()
    if (anonId !== "" && !/^[\w.:-]{1,128}$/.test(anonId)) problems.push({ path: "anonId", code: "invalid" })
    const purpose = (fields["consentText"] ?? "").trim()
    if (purpose.length > 1000) problems.push({ path: "consentText", code: "too_long", params: { max: 1000 } })
    const extra: Record<string, string> = {}
    for (const [name, max] of Object.entries(ALLOWED_FIELDS)) {
      const value = (fields[name] ?? "").trim()
      if (value.length > max) problems.push({ path: name, code: "too_long", params: { max } })
      else if (value !== "") extra[name] = value
    }
    if (problems.length > 0 || !email.ok) {
      return yield* new ApiError({ status: 400, code: "invalid_lead", fields: problems })
    }
    const locale = (fields["locale"] ?? "").trim()
    return {
      email: { display: email.display, normalized: email.normalized },
      anonId: anonId === "" ? null : anonId,
      expressConsent: consent === "express",
      purpose: purpose === "" ? null : purpose,
      formName,
      locale: /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$/.test(locale) ? locale : language,
      extra
    } satisfies ValidLead
  })

const limit = (decision: Effect.Effect<{ allowed: boolean; retryAfterSeconds: number }>) =>
  Effect.flatMap(decision, ({ allowed, retryAfterSeconds }) =>
    allowed
      ? Effect.void
      : Effect.fail(new ApiError({
        status: 429,
        code: "rate_limited",
        headers: { "retry-after": String(retryAfterSeconds) }
      })))

const success = (
  mode: Mode,
  created: boolean,
  tenantId: string,
  propertyId: string,
  language: Language,
  request: HttpServerRequest.HttpServerRequest
) =>
  Effect.gen(function*() {
    if (mode === "json") {
      return HttpServerResponse.jsonUnsafe(
        { status: created ? "created" : "updated" },
        { status: created ? 201 : 200, headers: corsHeaders(request.headers["origin"]) }
      )
    }
    const properties = yield* Properties
    const [property] = yield* properties.list(tenantId, propertyId)
    const thankYou = property?.thankYouUrl ?? null
    // The thank-you URL was checked against the domains when it was set;
    // checking again keeps a later change of domains from opening a redirect.
    const target = thankYou !== null && URL.canParse(thankYou) &&
        property?.domains.includes(new URL(thankYou).hostname)
      ? thankYou
      : `/v1/leads/thanks?lang=${language}`
    return HttpServerResponse.redirect(target, { status: 303 })
  })

/** `GET /v1/leads/thanks`: the confirmation page of a plain form without a thank-you page. */
export const thanksPage = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const language = languageOf(request)
  const config = yield* AppConfig
  const contact = config.privacyContactEmail
  const privacy = contact._tag === "Some"
    ? `<p>${escapeHtml(translate(language, "page.lead_thanks.privacy", { email: contact.value }))}</p>`
    : ""
  return htmlPage({
    language,
    title: translate(language, "page.lead_thanks.title"),
    body: `<p>${escapeHtml(translate(language, "page.lead_thanks.body"))}</p>${privacy}`
  })
})

const formErrorPage = (error: ApiError, language: Language, request: HttpServerRequest.HttpServerRequest) => {
  const problems = (error.fields ?? []).map((field) =>
    `<li>${escapeHtml(translate(language, `field.${field.code}`, { path: fieldLabel(field.path, language), ...field.params }))}</li>`
  ).join("")
  const referer = request.headers["referer"]
  const back = referer !== undefined && URL.canParse(referer) && /^https?:$/.test(new URL(referer).protocol)
    ? `<p><a href="${escapeHtml(referer)}">${escapeHtml(translate(language, "page.lead_error.back"))}</a></p>`
    : `<p>${escapeHtml(translate(language, "page.lead_error.back_button"))}</p>`
  const summary = translate(language, `error.${error.code}`, error.params)
  const page = htmlPage({
    language,
    title: translate(language, "page.lead_error.title"),
    status: error.status,
    body: `<p>${escapeHtml(summary)}</p>${problems === "" ? "" : `<ul>${problems}</ul>`}${back}`
  })
  return error.headers === undefined ? page : HttpServerResponse.setHeaders(page, error.headers)
}

const fieldLabel = (path: string, language: Language) => translate(language, `label.${path}`)

const modeOf = (contentType: string | undefined): Mode | undefined => {
  const mediaType = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? ""
  if (mediaType === "application/x-www-form-urlencoded") return "form"
  if (mediaType === "application/json" || mediaType === "text/plain") return "json"
  return undefined
}

/** Reads the submitted fields as strings: a JSON object's string and boolean values, or the form's fields. */
const parseFields = (mode: Mode, text: string): Readonly<Record<string, string>> | undefined => {
  if (mode === "form") return Object.fromEntries(new URLSearchParams(text))
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined
  const fields: Record<string, string> = {}
  for (const [name, field] of Object.entries(value)) {
    if (typeof field === "string") fields[name] = field
    else if (field === true) fields[name] = name === "consent" ? "express" : "true"
  }
  return fields
}

const pathOfReferer = (referer: string | undefined, domains: ReadonlyArray<string>) => {
  if (referer === undefined || !URL.canParse(referer)) return undefined
  const url = new URL(referer)
  return domains.includes(url.hostname) ? url.pathname : undefined
}
