/**
 * The traffic that the ingest benchmark sends. Visitors land from a search
 * engine or social site, from an email campaign, from another site or
 * directly. They view 1 to 10 pages, and some of them click a call to
 * action or start and submit a form. Events have the fields and the
 * envelope that the bundled tracker (`static/dist/porchlight.js`) sends,
 * including one `web_vitals` event after each page view. Choices come from a
 * seeded generator, so two runs send the same mix; ids are random, so every
 * event is new to the service.
 */
import { randomUUID } from "node:crypto"
import * as Fs from "node:fs"

/** Size of a one-event body, in bytes, as sendBeacon would send it for one page. */
export const MIN_BODY_BYTES = 300
export const MAX_BODY_BYTES = 600

/** Share of visitors that are crawlers, which view pages but send no vitals or clicks. */
const BOT_SHARE = 0.03

export interface Corpus {
  readonly humanAgents: ReadonlyArray<string>
  readonly botAgents: ReadonlyArray<string>
  /** Search engine, social and AI assistant referrer URLs. */
  readonly searchAndSocialReferrers: ReadonlyArray<string>
}

/** One event as it travels in the body, with what the request needs to send it. */
export interface OutgoingEvent {
  readonly eventId: string
  readonly json: string
  readonly userAgent: string
  readonly clientIp: string
}

/** One planned request: the body and the ids of the events in it. */
export interface PlannedRequest {
  readonly body: string
  readonly userAgent: string
  readonly clientIp: string
  readonly eventIds: ReadonlyArray<string>
}

/** Reads the user agent and referrer lists from the third-party test data folder. */
export const loadCorpus = (testDataDir: URL): Corpus => {
  if (!Fs.existsSync(testDataDir)) {
    throw new Error(`test data folder not found: ${testDataDir.pathname} (expected shared/testdata beside the repository)`)
  }
  const humans = readVectors(new URL("ua_humans_intoli_user_agents.json", testDataDir))
  const bots = readVectors(new URL("ua_bots_crawler_user_agents.json", testDataDir))
  const referrers = readVectors(new URL("referrer_matomo_lists.json", testDataDir))
  return {
    humanAgents: humans.map((vector) => stringField(vector, "ua")),
    botAgents: bots.map((vector) => stringField(vector, "ua")),
    searchAndSocialReferrers: referrers.map((vector) => stringField(vector, "referrer_url"))
  }
}

const readVectors = (file: URL): ReadonlyArray<Record<string, unknown>> => {
  const parsed: unknown = JSON.parse(Fs.readFileSync(file, "utf8"))
  if (typeof parsed !== "object" || parsed === null || !("vectors" in parsed) || !Array.isArray(parsed.vectors)) {
    throw new Error(`invalid test data file ${file.pathname}: expected a JSON object with a "vectors" array`)
  }
  return parsed.vectors.filter((vector): vector is Record<string, unknown> =>
    typeof vector === "object" && vector !== null
  )
}

const stringField = (vector: Record<string, unknown>, field: string): string => {
  const value = vector[field]
  if (typeof value !== "string") throw new Error(`invalid test data vector: "${field}" is not a string`)
  return value
}

/** Mulberry32: a small seeded generator, so the traffic mix is the same on every run. */
export const seededRandom = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const BLOG_POSTS = [
  "/blog/how-to-measure-marketing-site-conversions",
  "/blog/first-party-analytics-without-cookies",
  "/blog/lead-capture-forms-that-convert",
  "/blog/utm-tags-explained",
  "/blog/core-web-vitals-for-landing-pages",
  "/blog/b2b-saas-pricing-page-teardown",
  "/blog/why-we-dropped-third-party-scripts"
]

const SITE_PAGES = [
  "/",
  "/pricing",
  "/features",
  "/features/lead-capture",
  "/features/attribution",
  "/integrations",
  "/integrations/hubspot",
  "/customers",
  "/about",
  "/docs/getting-started",
  "/blog",
  ...BLOG_POSTS
]

const OTHER_REFERRERS = [
  "https://www.g2.com/products/porchlight/reviews",
  "https://www.producthunt.com/products/porchlight",
  "https://dev.to/some-author/measuring-a-marketing-site-4k2j",
  "https://www.capterra.com/p/000000/Porchlight/"
]

const CAMPAIGNS = [
  { source: "newsletter", medium: "email", campaign: "spring-launch" },
  { source: "linkedin", medium: "paid_social", campaign: "q2-demand-gen" },
  { source: "partner-blog", medium: "referral", campaign: "guest-post" }
]

const CTAS = ["start-trial", "book-demo", "compare-plans", "read-docs"]

/** Weights of 1 to 10 page views per visit: most visits are short. */
const PAGE_VIEW_WEIGHTS = [30, 18, 13, 10, 8, 6, 5, 4, 3, 3]

/** An event before its id and time are set: what the visitor will do next. */
interface PlannedEvent {
  readonly eventId: string
  readonly eventType: string
  readonly path: string
  readonly referrer?: string
  readonly utm?: Readonly<Record<string, string>>
  readonly props?: Readonly<Record<string, string | number>>
}

interface Visitor {
  readonly anonId: string
  readonly userAgent: string
  readonly clientIp: string
  readonly events: ReadonlyArray<PlannedEvent>
  next: number
}

/**
 * The event stream of one connection. It keeps `activeVisitors` visits open
 * and takes their events in turn, so one visitor's events leave in order and
 * never on two connections at once. A finished visit is replaced by a new
 * visitor.
 */
export class VisitorStream {
  private readonly corpus: Corpus
  private readonly ingestKey: string
  private readonly random: () => number
  private readonly visitors: Array<Visitor> = []
  /** Bytes of the envelope around one event. */
  private readonly envelopeBytes: number
  private turn = 0

  constructor(corpus: Corpus, ingestKey: string, seed: number, activeVisitors: number) {
    this.corpus = corpus
    this.ingestKey = ingestKey
    this.random = seededRandom(seed)
    this.envelopeBytes = envelope(ingestKey, [""]).length
    for (let index = 0; index < activeVisitors; index++) this.visitors.push(this.newVisitor())
  }

  /** Builds the next request: `batchSize` events in one `{"key", "events"}` body. */
  nextRequest(batchSize: number): PlannedRequest {
    const events: Array<OutgoingEvent> = []
    for (let index = 0; index < batchSize; index++) events.push(this.nextEvent())
    const first = events[0]
    if (first === undefined) throw new Error(`invalid batch size ${batchSize}: expected at least 1`)
    return {
      body: envelope(this.ingestKey, events.map((event) => event.json)),
      // The request's user agent and address are the first event's visitor's.
      userAgent: first.userAgent,
      clientIp: first.clientIp,
      eventIds: events.map((event) => event.eventId)
    }
  }

  private nextEvent(): OutgoingEvent {
    this.turn = (this.turn + 1) % this.visitors.length
    let visitor = this.visitors[this.turn]
    if (visitor === undefined || visitor.next >= visitor.events.length) {
      visitor = this.newVisitor()
      this.visitors[this.turn] = visitor
    }
    const planned = visitor.events[visitor.next]
    visitor.next++
    if (planned === undefined) throw new Error("visitor plan is empty")
    // Targets stop short of the maximum by the padding's overshoot, at most 5 bytes.
    const target = MIN_BODY_BYTES + Math.floor(this.random() * (MAX_BODY_BYTES - 5 - MIN_BODY_BYTES + 1))
    return {
      eventId: planned.eventId,
      json: serialize(planned, visitor.anonId, target - this.envelopeBytes, this.random),
      userAgent: visitor.userAgent,
      clientIp: visitor.clientIp
    }
  }

  private newVisitor(): Visitor {
    const isBot = this.random() < BOT_SHARE
    const userAgent = isBot ? pick(this.corpus.botAgents, this.random) : pick(this.corpus.humanAgents, this.random)
    const events = isBot ? planBotVisit(this.random) : planHumanVisit(this.corpus, this.random)
    return { anonId: randomUUID(), userAgent, clientIp: publicIpv4(this.random), events, next: 0 }
  }
}

/** The body the tracker sends: `{"key": ..., "events": [...]}`. */
const envelope = (key: string, eventJsons: ReadonlyArray<string>) =>
  `{"key":${JSON.stringify(key)},"events":[${eventJsons.join(",")}]}`

/**
 * Serializes the event with the current time. When it is shorter than
 * `targetBytes`, the page URL gets a `_gl` tracking parameter (as Google's
 * cross-domain linker adds) of the missing length. The service drops query
 * strings before it stores a path, so the padding changes only the parse.
 */
const serialize = (event: PlannedEvent, anonId: string, targetBytes: number, random: () => number): string => {
  const fields = { ...event, anonId, timestamp: new Date().toISOString() }
  const plain = JSON.stringify(fields)
  if (plain.length >= targetBytes) return plain
  const separator = event.path.includes("?") ? "&_gl=" : "?_gl="
  // At least one character, so a body can end up to separator.length bytes over its target.
  const missing = Math.max(1, targetBytes - plain.length - separator.length)
  return JSON.stringify({ ...fields, path: `${event.path}${separator}${randomToken(missing, random)}` })
}

const planHumanVisit = (corpus: Corpus, random: () => number): ReadonlyArray<PlannedEvent> => {
  const landing = chooseLanding(corpus, random)
  const pageViews = weightedIndex(PAGE_VIEW_WEIGHTS, random) + 1
  const ctaAfter = random() < 0.2 ? Math.floor(random() * pageViews) : -1
  const startsForm = random() < 0.08
  const events: Array<PlannedEvent> = []
  for (let page = 0; page < pageViews; page++) {
    const path = page === 0 ? landing.path : pick(SITE_PAGES, random)
    const pageView = plannedEvent("page_view", path, page === 0 ? landing : {})
    events.push(pageView)
    if (page === ctaAfter) events.push(plannedEvent("cta_click", path, { props: { cta: pick(CTAS, random) } }))
    events.push(plannedEvent("web_vitals", path, { props: vitals(pageView.eventId, page === 0, random) }))
  }
  if (startsForm) {
    const formName = "demo-request"
    events.push(plannedEvent("page_view", "/demo", {}))
    events.push(plannedEvent("form_start", "/demo", { props: { formName } }))
    if (random() < 0.5) events.push(plannedEvent("form_submit", "/demo", { props: { formName } }))
  }
  return events
}

const planBotVisit = (random: () => number): ReadonlyArray<PlannedEvent> => {
  const pages = 1 + Math.floor(random() * 3)
  return Array.from({ length: pages }, () => plannedEvent("page_view", pick(SITE_PAGES, random), {}))
}

interface Landing {
  readonly path: string
  readonly referrer?: string
  readonly utm?: Readonly<Record<string, string>>
}

/** Chooses where a visit comes from: about 45% search and social, 15% campaigns, 10% other sites, 30% direct. */
const chooseLanding = (corpus: Corpus, random: () => number): Landing => {
  const draw = random()
  if (draw < 0.45) {
    const path = random() < 0.6 ? pick(BLOG_POSTS, random) : "/"
    return { path, referrer: pick(corpus.searchAndSocialReferrers, random) }
  }
  if (draw < 0.6) {
    const utm = pick(CAMPAIGNS, random)
    const query = `utm_source=${utm.source}&utm_medium=${utm.medium}&utm_campaign=${utm.campaign}`
    return { path: `${pick(["/", "/pricing", "/features/lead-capture"], random)}?${query}`, utm }
  }
  if (draw < 0.7) return { path: pick(SITE_PAGES, random), referrer: pick(OTHER_REFERRERS, random) }
  return { path: pick(SITE_PAGES, random) }
}

/** Props of a `web_vitals` event; only a page load's first view carries the load metrics. */
const vitals = (pageViewId: string, isLoad: boolean, random: () => number): Record<string, string | number> => {
  const props: Record<string, string | number> = {
    pageViewId,
    engagedTimeMs: Math.round(2_000 + random() * 90_000),
    scrollDepthPercent: Math.round(20 + random() * 80)
  }
  if (!isLoad) return props
  return {
    ...props,
    ttfbMs: Math.round(40 + random() * 600),
    fcpMs: Math.round(300 + random() * 2_000),
    lcpMs: Math.round(500 + random() * 3_500),
    inpMs: Math.round(16 + random() * 300),
    clsScore: Math.round(random() * 2_500) / 10_000
  }
}

const plannedEvent = (
  eventType: string,
  path: string,
  extra: { readonly referrer?: string; readonly utm?: Readonly<Record<string, string>>; readonly props?: Readonly<Record<string, string | number>> }
): PlannedEvent => ({ eventId: randomUUID(), eventType, path, ...extra })

const pick = <A>(values: ReadonlyArray<A>, random: () => number): A => {
  const value = values[Math.floor(random() * values.length)]
  if (value === undefined) throw new Error("cannot pick from an empty list")
  return value
}

const weightedIndex = (weights: ReadonlyArray<number>, random: () => number): number => {
  const total = weights.reduce((sum, weight) => sum + weight, 0)
  let draw = random() * total
  for (const [index, weight] of weights.entries()) {
    draw -= weight
    if (draw < 0) return index
  }
  return weights.length - 1
}

/**
 * Returns a random unicast IPv4 address outside 0/8, 10/8, 100.64/10, 127/8,
 * 169.254/16, 172.16/12, 192.168/16 and 224/3. It is only sent as a header
 * value for the country lookup and never connected to.
 */
const publicIpv4 = (random: () => number): string => {
  for (;;) {
    const octets = Array.from({ length: 4 }, () => Math.floor(random() * 256))
    const [a = 0, b = 0] = octets
    const reserved = a === 0 || a === 10 || a === 127 || a >= 224 ||
      (a === 100 && b >= 64 && b < 128) || (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168)
    if (!reserved) return octets.join(".")
  }
}

const TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

const randomToken = (length: number, random: () => number): string => {
  let token = ""
  for (let index = 0; index < length; index++) token += TOKEN_ALPHABET[Math.floor(random() * TOKEN_ALPHABET.length)]
  return token
}
