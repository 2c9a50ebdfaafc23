/**
 * Turns a validated event and its request into an `EnrichedEvent`: the
 * client address and user agent are kept only as HMAC-SHA256 with the
 * pepper; the address also gives the country (then it is dropped); the user
 * agent and client hints give the device type or bot; the referrer, page URL
 * and UTM tags give the traffic source. Query strings are dropped from the
 * stored path and referrer, since they may carry personal data.
 */
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { createHmac } from "node:crypto"
import { v7 as uuidv7 } from "uuid"
import type { EnrichedEvent } from "../streams/IngestMessages.ts"
import { AppConfig } from "./AppConfig.ts"
import { Database } from "./Database.ts"
import { DEFAULT_COUNTRY_DATABASE_PATH, openCountryDatabase } from "./GeoCountry.ts"
import { classifyTrafficSource } from "./TrafficSource.ts"
import { type ClientHints, classifyUserAgent, type DeviceType } from "./UserAgentClassifier.ts"

/** A client clock further than this from the receive time is recorded as skewed. */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000

export interface IncomingEvent {
  readonly eventId?: string | undefined
  readonly eventType: string
  /** Path with its query string, as the tracker sends it. */
  readonly path: string
  readonly referrer?: string | undefined
  readonly utm?: {
    readonly source?: string | undefined
    readonly medium?: string | undefined
    readonly campaign?: string | undefined
    readonly term?: string | undefined
    readonly content?: string | undefined
  } | undefined
  readonly props?: Readonly<Record<string, string | number | boolean>> | undefined
  readonly timestamp?: number | undefined
}

export interface RequestFacts {
  readonly ip: string | undefined
  readonly userAgent: string | undefined
  readonly clientHints: ClientHints
  readonly receivedAt: number
  /** The property's own host names, for internal traffic. */
  readonly propertyDomains: ReadonlyArray<string>
}

export interface EnrichmentShape {
  readonly enrich: (event: IncomingEvent, request: RequestFacts) => EnrichedEvent
  /** The keyed hash of an IP address or user agent, hex-encoded. */
  readonly hash: (value: string) => string
  /** Returns the keyed hash of the request's address, or "" without one, computed once per request. */
  readonly ipHash: (request: RequestFacts) => string
}

/** Facts of a request that every one of its events shares. */
interface RequestDerived {
  readonly ipHash: string
  readonly uaHash: string
  readonly countryCode: string | null
  readonly deviceType: DeviceType
}

export class Enrichment extends Context.Service<Enrichment, EnrichmentShape>()("porchlight/services/Enrichment") {
  static readonly layer = Layer.effect(
    Enrichment,
    Effect.gen(function*() {
      const database = yield* Database
      const config = yield* AppConfig
      const pepper = Redacted.value(database.ipHashPepper)
      const path = Option.getOrElse(config.geoipCountryDb, () => DEFAULT_COUNTRY_DATABASE_PATH)
      const lookupCountry = yield* Effect.tryPromise({
        try: () => openCountryDatabase(path),
        catch: (error) => new Error(`could not open GEOIP_COUNTRY_DB ${path}: ${String(error)}`)
      }).pipe(Effect.orDie)
      yield* Effect.logInfo("country database opened").pipe(
        Effect.annotateLogs({ service: "enrichment", bundled: Option.isNone(config.geoipCountryDb) })
      )
      const hash = (value: string) => createHmac("sha256", pepper).update(value).digest("hex")
      // A batch's events share their request's hashes, country and device,
      // so these are computed once per request.
      const derived = new WeakMap<RequestFacts, RequestDerived>()
      const derive = (request: RequestFacts): RequestDerived => {
        const known = derived.get(request)
        if (known !== undefined) return known
        const fresh: RequestDerived = {
          ipHash: request.ip === undefined ? "" : hash(request.ip),
          uaHash: hash(request.userAgent ?? ""),
          countryCode: request.ip === undefined ? null : lookupCountry(request.ip),
          deviceType: classifyUserAgent(request.userAgent, request.clientHints).deviceType
        }
        derived.set(request, fresh)
        return fresh
      }
      const enrich = (event: IncomingEvent, request: RequestFacts) => enrichEvent(event, request, derive(request))
      const ipHash = (request: RequestFacts) => derive(request).ipHash
      return Enrichment.of({ enrich, hash, ipHash })
    })
  )
}

const enrichEvent = (event: IncomingEvent, request: RequestFacts, derived: RequestDerived): EnrichedEvent => {
  const page = splitUrl(event.path)
  const referrer = event.referrer === undefined || event.referrer.trim() === "" ? null : event.referrer.trim()
  const utm = { ...utmFromQuery(page.query), ...definedOnly(event.utm ?? {}) }
  const traffic = classifyTrafficSource({
    referrer,
    pageUrl: event.path,
    utm,
    ownDomains: request.propertyDomains
  })
  const skew = event.timestamp === undefined ? null : event.timestamp - request.receivedAt
  return {
    eventId: uuidv7(),
    clientEventId: event.eventId ?? null,
    eventType: event.eventType,
    path: page.path,
    referrer: referrer === null ? null : stripQuery(referrer),
    referrerDomain: traffic.referrerDomain,
    receivedAt: request.receivedAt,
    clientTimestamp: event.timestamp ?? null,
    clockSkewMs: skew !== null && Math.abs(skew) > MAX_CLOCK_SKEW_MS ? skew : null,
    ipHash: derived.ipHash,
    uaHash: derived.uaHash,
    countryCode: derived.countryCode,
    deviceType: derived.deviceType,
    trafficSource: traffic.trafficSource,
    sourceName: traffic.sourceName,
    searchTerm: traffic.searchTerm,
    utmSource: utm.source ?? null,
    utmMedium: utm.medium ?? null,
    utmCampaign: utm.campaign ?? null,
    utmTerm: utm.term ?? null,
    utmContent: utm.content ?? null,
    props: event.props ?? {}
  }
}

interface Utm {
  source?: string
  medium?: string
  campaign?: string
  term?: string
  content?: string
}

const UTM_FIELDS = ["source", "medium", "campaign", "term", "content"] as const

const utmFromQuery = (query: URLSearchParams): Utm => {
  const utm: Utm = {}
  for (const field of UTM_FIELDS) {
    const value = query.get(`utm_${field}`)?.trim()
    if (value !== undefined && value !== "") utm[field] = value.slice(0, 256)
  }
  return utm
}

const definedOnly = (values: NonNullable<IncomingEvent["utm"]>): Utm => {
  const utm: Utm = {}
  for (const field of UTM_FIELDS) {
    const value = values[field]?.trim()
    if (value !== undefined && value !== "") utm[field] = value
  }
  return utm
}

const splitUrl = (pathWithQuery: string) => {
  const url = new URL(pathWithQuery, "http://page.invalid")
  return { path: url.pathname, query: url.searchParams }
}

const stripQuery = (url: string) => {
  const end = url.search(/[?#]/)
  return end === -1 ? url : url.slice(0, end)
}
