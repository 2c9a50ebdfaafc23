/**
 * The lead forms that the lead benchmark sends, and the visits behind them.
 *
 * Each lead is one person: a visitor who landed on the site (from a search
 * engine, social site, campaign, another site or directly) and then sent the
 * contact form with the consent box ticked. The benchmark stores those
 * visitors and their sessions before the load, as the tracker's beacons
 * would have, so a capture finds the session it reads the lead's first and
 * last touch from. The bodies carry what `static/dist/porchlight.js` posts
 * from the contact form in `static/dist/contact.html`, with its consent
 * wording. Email addresses are the valid ones of the third-party test sets,
 * each made unique with a number before the `@`.
 */
import { createHmac, randomUUID } from "node:crypto"
import * as Fs from "node:fs"
import type pg from "pg"
import { parseEmailAddress } from "../../src/services/EmailAddress.ts"
import { classifyTrafficSource } from "../../src/services/TrafficSource.ts"
import { classifyUserAgent } from "../../src/services/UserAgentClassifier.ts"
import { type Corpus, seededRandom } from "./corpus.ts"

const EMAIL_FILES = [
  "email_isemail.json",
  "email_python_email_validator.json",
  "email_validatorjs_isemail.json",
  "email_validatorjs_normalize.json"
]

/** The widest suffix a template gets; templates that cannot take it are left out. */
const WIDEST_SUFFIX = ".99999999"
const FORM_NAME = "contact-sales"

const LANDING_PAGES = ["/", "/pricing", "/features/lead-capture", "/blog/lead-capture-forms-that-convert", "/contact"]
const OTHER_REFERRERS = [
  "https://www.g2.com/products/porchlight/reviews",
  "https://www.capterra.com/p/000000/Porchlight/",
  "https://dev.to/some-author/measuring-a-marketing-site-4k2j"
]
const CAMPAIGNS = [
  { source: "newsletter", medium: "email", campaign: "spring-launch" },
  { source: "linkedin", medium: "paid_social", campaign: "q2-demand-gen" },
  { source: "google", medium: "cpc", campaign: "brand-search" }
]
const NAMES = ["Avery Tremblay", "Jordan Gagnon", "Priya Raman", "Samuel Roy", "Mei Chen", "Olivia Côté", "Noah Martin"]
const COMPANIES = ["Northwind Freight", "Maple Ledger Inc.", "Boréal Logiciels", "Harbourline Dental", "Quill & Co."]

export interface LeadTestData {
  /** Valid addresses of the test sets that stay valid with a numeric suffix on the local part. */
  readonly emailTemplates: ReadonlyArray<string>
  /** The consent wording of the contact form: the value of its hidden `consentText` field. */
  readonly consentText: string
}

/** A visitor stored before the load, with the session that brought them to the form. */
export interface SeededVisitor {
  readonly anonId: string
  readonly userAgent: string
  readonly clientIp: string
  readonly ipHash: string
  readonly uaHash: string
  readonly landingPath: string
  readonly referrer: string | null
  readonly referrerDomain: string | null
  readonly searchTerm: string | null
  readonly utm: { readonly source: string; readonly medium: string; readonly campaign: string } | null
  readonly trafficSource: string
  readonly deviceType: string
  readonly pageViews: number
}

/** One planned capture request. */
export interface PlannedLead {
  readonly body: string
  readonly userAgent: string
  readonly clientIp: string
  /** The address as the service normalizes it, to find the lead afterwards. */
  readonly emailNormalized: string
  readonly anonId: string
}

/** Reads the email test sets and the contact form's consent wording. */
export const loadLeadTestData = (testDataDir: URL, contactPage: URL): LeadTestData => {
  const templates = new Set<string>()
  for (const file of EMAIL_FILES) {
    const parsed: unknown = JSON.parse(Fs.readFileSync(new URL(file, testDataDir), "utf8"))
    if (typeof parsed !== "object" || parsed === null || !("vectors" in parsed) || !Array.isArray(parsed.vectors)) {
      throw new Error(`invalid test data file ${file}: expected a JSON object with a "vectors" array`)
    }
    for (const vector of parsed.vectors) {
      const input: unknown = typeof vector === "object" && vector !== null && "input" in vector ? vector.input : undefined
      if (typeof input !== "string") continue
      if (parseEmailAddress(input).ok && parseEmailAddress(withSuffix(input, WIDEST_SUFFIX)).ok) templates.add(input)
    }
  }
  if (templates.size === 0) throw new Error(`no valid email address found in ${EMAIL_FILES.join(", ")}`)
  const page = Fs.readFileSync(contactPage, "utf8")
  const consentText = /name="consentText" value="([^"]+)"/.exec(page)?.[1]
  if (consentText === undefined) throw new Error(`no consentText field found in ${contactPage.pathname}`)
  return { emailTemplates: [...templates], consentText }
}

/**
 * Plans visitors and lead bodies from one seeded generator, so two runs send
 * the same mix. Ids are random, so every visitor and address is new to the
 * database.
 */
export class LeadTraffic {
  private readonly corpus: Corpus
  private readonly data: LeadTestData
  private readonly ingestKey: string
  private readonly pepper: string
  private readonly siteHost: string
  private readonly random: () => number
  /** Seeded visitors that have not sent their form yet, oldest first. */
  private readonly waiting: Array<SeededVisitor> = []
  private nextWaiting = 0
  private addressCount = 0
  private readonly usedAddresses = new Set<string>()
  /** Leads sent by a visitor that was not seeded, because the seeded ones ran out. */
  unseededLeads = 0

  constructor(options: {
    readonly corpus: Corpus
    readonly data: LeadTestData
    readonly ingestKey: string
    readonly ipHashPepper: string
    readonly siteHost: string
    readonly seed: number
  }) {
    this.corpus = options.corpus
    this.data = options.data
    this.ingestKey = options.ingestKey
    this.pepper = options.ipHashPepper
    this.siteHost = options.siteHost
    this.random = seededRandom(options.seed)
  }

  /** Seeded visitors that have not sent a lead yet. */
  get waitingVisitors(): number {
    return this.waiting.length - this.nextWaiting
  }

  /** Plans `count` new visitors, queues them for leads, and returns them for storing. */
  planVisitors(count: number): ReadonlyArray<SeededVisitor> {
    if (this.nextWaiting > 0) {
      this.waiting.splice(0, this.nextWaiting)
      this.nextWaiting = 0
    }
    const planned = Array.from({ length: count }, () => this.newVisitor())
    this.waiting.push(...planned)
    return planned
  }

  /** Plans the next capture: the next waiting visitor sends the form with a new address. */
  nextLead(): PlannedLead {
    let visitor = this.waiting[this.nextWaiting]
    if (visitor === undefined) {
      this.unseededLeads++
      visitor = this.newVisitor()
    } else {
      this.nextWaiting++
    }
    const { display, normalized } = this.newAddress()

    const fields: Record<string, string> = {
      key: this.ingestKey,
      email: display,
      anonId: visitor.anonId,
      formName: FORM_NAME,
      locale: this.random() < 0.25 ? "fr" : "en",
      website: ""
    }
    if (this.random() < 0.6) fields["name"] = pick(NAMES, this.random)
    if (this.random() < 0.5) fields["company"] = pick(COMPANIES, this.random)
    fields["consent"] = "express"
    fields["consentText"] = this.data.consentText

    // Hidden UTM inputs, as many marketing forms carry. The service does not
    // keep them: it reads the campaign from the visitor's session.
    if (visitor.utm !== null) {
      fields["utm_source"] = visitor.utm.source
      fields["utm_medium"] = visitor.utm.medium
      fields["utm_campaign"] = visitor.utm.campaign
    }

    return {
      body: JSON.stringify(fields),
      userAgent: visitor.userAgent,
      clientIp: visitor.clientIp,
      emailNormalized: normalized,
      anonId: visitor.anonId
    }
  }

  private newAddress(): { display: string; normalized: string } {
    for (;;) {
      this.addressCount++
      const template = pick(this.data.emailTemplates, this.random)
      const parsed = parseEmailAddress(withSuffix(template, `.${this.addressCount}`))
      if (!parsed.ok) throw new Error(`the address template ${JSON.stringify(template)} became invalid with a suffix`)
      if (this.usedAddresses.has(parsed.normalized)) continue
      this.usedAddresses.add(parsed.normalized)
      return { display: parsed.display, normalized: parsed.normalized }
    }
  }

  private newVisitor(): SeededVisitor {
    const userAgent = pick(this.corpus.humanAgents, this.random)
    const clientIp = publicIpv4(this.random)
    const landing = this.chooseLanding()
    const classified = classifyTrafficSource({
      referrer: landing.referrer,
      pageUrl: `https://${this.siteHost}${landing.pageUrl}`,
      ownDomains: [this.siteHost]
    })
    return {
      anonId: randomUUID(),
      userAgent,
      clientIp,
      ipHash: this.hash(clientIp),
      uaHash: this.hash(userAgent),
      landingPath: landing.pageUrl.split("?")[0] ?? "/",
      referrer: landing.referrer,
      referrerDomain: classified.referrerDomain,
      searchTerm: classified.searchTerm,
      utm: landing.utm,
      trafficSource: classified.trafficSource,
      deviceType: classifyUserAgent(userAgent).deviceType,
      pageViews: 1 + Math.floor(this.random() * 6)
    }
  }

  /** About 45% search and social, 20% campaigns, 10% other sites and 25% direct. */
  private chooseLanding(): { pageUrl: string; referrer: string | null; utm: SeededVisitor["utm"] } {
    const draw = this.random()
    const path = pick(LANDING_PAGES, this.random)
    if (draw < 0.45) return { pageUrl: path, referrer: pick(this.corpus.searchAndSocialReferrers, this.random), utm: null }
    if (draw < 0.65) {
      const utm = pick(CAMPAIGNS, this.random)
      const query = `utm_source=${utm.source}&utm_medium=${utm.medium}&utm_campaign=${utm.campaign}`
      return { pageUrl: `${path}?${query}`, referrer: null, utm }
    }
    if (draw < 0.75) return { pageUrl: path, referrer: pick(OTHER_REFERRERS, this.random), utm: null }
    return { pageUrl: path, referrer: null, utm: null }
  }

  /** Computes the keyed hash that the service stores for an IP address or user agent (its `Enrichment.hash`). */
  private hash(value: string): string {
    return createHmac("sha256", this.pepper).update(value).digest("hex")
  }
}

const withSuffix = (address: string, suffix: string) => {
  const at = address.lastIndexOf("@")
  return at <= 0 ? address : `${address.slice(0, at)}${suffix}${address.slice(at)}`
}

const pick = <A>(values: ReadonlyArray<A>, random: () => number): A => {
  const value = values[Math.floor(random() * values.length)]
  if (value === undefined) throw new Error("cannot pick from an empty list")
  return value
}

/**
 * Returns a random unicast IPv4 address outside the private, loopback,
 * link-local, shared and multicast ranges. It is only sent as the
 * Fly-Client-IP header value and never connected to.
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

const SEED_BATCH = 5_000

/**
 * Stores the visitors, each with the session that brought them to the form,
 * as the owner (row-level security does not apply to the owner). The
 * session started four minutes before and was last active 30 seconds
 * before the call, within the capture's 30-minute same-IP window.
 */
export const storeSeededVisitors = async (
  owner: pg.Client,
  property: { readonly tenantId: string; readonly propertyId: string },
  visitors: ReadonlyArray<SeededVisitor>
) => {
  for (let start = 0; start < visitors.length; start += SEED_BATCH) {
    const batch = visitors.slice(start, start + SEED_BATCH)
    const column = (pick: (visitor: SeededVisitor) => string | number | null) => batch.map(pick)
    await owner.query(
      `WITH planned AS (
         SELECT * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                              $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::int[])
           AS p(anon_id, ip_hash, ua_hash, landing_path, referrer, referrer_domain, search_term,
                utm_source, utm_medium, utm_campaign, traffic_source, device_type, page_views)
       ), added AS (
         INSERT INTO visitors (tenant_id, property_id, anon_id, first_seen_at, last_seen_at,
                               first_ip_hash, last_ip_hash, first_ua_hash, last_ua_hash)
         SELECT $1, $2, anon_id, now() - interval '4 minutes', now() - interval '30 seconds',
                decode(ip_hash, 'hex'), decode(ip_hash, 'hex'), decode(ua_hash, 'hex'), decode(ua_hash, 'hex')
         FROM planned
         RETURNING id, anon_id
       )
       INSERT INTO sessions (tenant_id, property_id, visitor_id, started_at, last_event_at, landing_path,
                             exit_path, referrer, referrer_domain, search_term, utm_source, utm_medium,
                             utm_campaign, traffic_source, device_type, page_views, events)
       SELECT $1, $2, added.id, now() - interval '4 minutes', now() - interval '30 seconds', p.landing_path,
              '/contact', p.referrer, p.referrer_domain, p.search_term, p.utm_source, p.utm_medium,
              p.utm_campaign, p.traffic_source::traffic_source, p.device_type::device_type, p.page_views,
              2 * p.page_views + 2
       FROM added JOIN planned p USING (anon_id)`,
      [
        property.tenantId,
        property.propertyId,
        column((visitor) => visitor.anonId),
        column((visitor) => visitor.ipHash),
        column((visitor) => visitor.uaHash),
        column((visitor) => visitor.landingPath),
        column((visitor) => visitor.referrer),
        column((visitor) => visitor.referrerDomain),
        column((visitor) => visitor.searchTerm),
        column((visitor) => visitor.utm?.source ?? null),
        column((visitor) => visitor.utm?.medium ?? null),
        column((visitor) => visitor.utm?.campaign ?? null),
        column((visitor) => visitor.trafficSource),
        column((visitor) => visitor.deviceType),
        column((visitor) => visitor.pageViews)
      ]
    )
  }
}
