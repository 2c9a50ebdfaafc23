/**
 * Traffic source classification for one page view: direct, organic or paid
 * search, social, email, referral, campaign, internal or unknown.
 *
 * The rules and their precedence are documented in docs/classification.md
 * ("Traffic sources"). Host lists come from src/services/data/referrer-sources.json,
 * which scripts/build-referrer-data.ts derives from Matomo's CC0 lists. The
 * lookup tables are built once at module load, so a call costs a URL parse,
 * two tldts lookups and a few Map lookups per hostname label.
 */
import { readFileSync } from "node:fs"
import { parse as parseHost } from "tldts"

export const TRAFFIC_SOURCES = [
  "direct",
  "organic_search",
  "paid_search",
  "social",
  "email",
  "referral",
  "campaign",
  "internal",
  "unknown"
] as const

export type TrafficSourceKind = (typeof TRAFFIC_SOURCES)[number]

/** UTM values as the tracker sent them; a missing one is read from the page URL. */
export interface UtmValues {
  readonly source?: string | null | undefined
  readonly medium?: string | null | undefined
  readonly campaign?: string | null | undefined
  readonly term?: string | null | undefined
  readonly content?: string | null | undefined
}

export interface TrafficSourceInput {
  /** Referrer URL. An empty, blank or missing value means no referrer. */
  readonly referrer?: string | null | undefined
  /** Page URL, or a path with its query string, read for click ids and UTM parameters. */
  readonly pageUrl?: string | null | undefined
  readonly utm?: UtmValues | undefined
  /** The property's own hostnames. Their registrable domains, subdomains included, count as internal. */
  readonly ownDomains?: ReadonlyArray<string> | undefined
}

export interface TrafficSourceResult {
  readonly trafficSource: TrafficSourceKind
  /** Display name such as "Google" or "Facebook", the UTM source, or the referrer's registrable domain. */
  readonly sourceName: string | null
  /** Search query from the referrer URL, or utm_term for paid search and campaigns. */
  readonly searchTerm: string | null
  /** Referrer hostname in lower case without a leading "www.", or null for app and unparseable referrers. */
  readonly referrerDomain: string | null
}

// ---------------------------------------------------------------------------
// Host list loading

/** "paid" marks ad-click redirectors such as googleadservices.com. */
type ListKind = "search" | "social" | "ai" | "email" | "paid"

interface ListEntry {
  readonly name: string
  readonly kind: ListKind
  /** Lower-case parameter names that may carry the search term, in priority order. */
  readonly params: ReadonlyArray<string>
  /** Patterns run against path + query, whose capture group 1 is the search term. */
  readonly pathPatterns: ReadonlyArray<RegExp>
}

interface PathRule {
  readonly prefix: string
  readonly entries: ReadonlyArray<ListEntry>
}

interface HostLists {
  readonly byHost: ReadonlyMap<string, ReadonlyArray<ListEntry>>
  readonly byHostPath: ReadonlyMap<string, ReadonlyArray<PathRule>>
  /** Lower-case display name -> entries with that name. */
  readonly byName: ReadonlyMap<string, ReadonlyArray<ListEntry>>
}

const DATA_FILE = new URL("./data/referrer-sources.json", import.meta.url)

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string")
}

function isListKind(value: unknown): value is ListKind {
  return value === "search" || value === "social" || value === "ai" || value === "email" || value === "paid"
}

function invalidData(detail: string): Error {
  return new Error(
    `Invalid ${DATA_FILE.pathname}: ${detail}. Regenerate it with "npx node scripts/build-referrer-data.ts".`
  )
}

function readEntry(value: unknown, index: number): ListEntry {
  if (
    !isRecord(value) ||
    typeof value["name"] !== "string" ||
    !isListKind(value["kind"]) ||
    !isStringArray(value["params"]) ||
    !isStringArray(value["pathPatterns"])
  ) {
    throw invalidData(`entry ${index} is malformed`)
  }
  const params = [...new Set(value["params"].map((param) => param.toLowerCase()))]
  return {
    name: value["name"],
    kind: value["kind"],
    params,
    pathPatterns: value["pathPatterns"].map((source) => new RegExp(source))
  }
}

function resolveEntries(indexes: unknown, entries: ReadonlyArray<ListEntry>, where: string): ListEntry[] {
  if (!Array.isArray(indexes)) throw invalidData(`${where} is not a list of entry indexes`)
  return indexes.map((index) => {
    const entry = typeof index === "number" ? entries[index] : undefined
    if (entry === undefined) throw invalidData(`${where} refers to a missing entry ${String(index)}`)
    return entry
  })
}

function loadHostLists(): HostLists {
  const data: unknown = JSON.parse(readFileSync(DATA_FILE, "utf8"))
  if (!isRecord(data) || !Array.isArray(data["entries"]) || !isRecord(data["hosts"]) || !isRecord(data["hostPaths"])) {
    throw invalidData("expected the keys entries, hosts and hostPaths")
  }

  const entries = data["entries"].map(readEntry)

  const byHost = new Map<string, ReadonlyArray<ListEntry>>()
  for (const [host, indexes] of Object.entries(data["hosts"])) {
    byHost.set(host, resolveEntries(indexes, entries, `hosts["${host}"]`))
  }

  const byHostPath = new Map<string, ReadonlyArray<PathRule>>()
  for (const [host, rules] of Object.entries(data["hostPaths"])) {
    if (!Array.isArray(rules)) throw invalidData(`hostPaths["${host}"] is not a list`)
    const parsed = rules.map((rule): PathRule => {
      if (!isRecord(rule) || typeof rule["path"] !== "string") throw invalidData(`hostPaths["${host}"] is malformed`)
      return { prefix: rule["path"], entries: resolveEntries(rule["entries"], entries, `hostPaths["${host}"]`) }
    })
    // Longest prefix first, so the most specific path wins.
    parsed.sort((a, b) => b.prefix.length - a.prefix.length)
    byHostPath.set(host, parsed)
  }

  const byName = new Map<string, ListEntry[]>()
  for (const entry of entries) {
    const key = entry.name.toLowerCase()
    const list = byName.get(key) ?? []
    list.push(entry)
    byName.set(key, list)
  }

  return { byHost, byHostPath, byName }
}

const HOST_LISTS = loadHostLists()

// ---------------------------------------------------------------------------
// Rule constants

/** Click ids of search advertising, with the network's display name. */
const PAID_SEARCH_CLICK_IDS: ReadonlyArray<readonly [param: string, sourceName: string]> = [
  ["gclid", "Google"], // Google Ads
  ["gbraid", "Google"], // Google Ads, iOS app-to-web
  ["wbraid", "Google"], // Google Ads, iOS web-to-app
  ["dclid", "Google"], // Display & Video 360 and Campaign Manager 360 (display ads)
  ["msclkid", "Bing"], // Microsoft Advertising
  ["yclid", "Yandex"] // Yandex Direct
]

/**
 * Click ids that social networks add to clicks on paid posts. The enum has no
 * paid-social value, so these count as a campaign from that network.
 */
const PAID_SOCIAL_CLICK_IDS: ReadonlyArray<readonly [param: string, sourceName: string]> = [
  ["ttclid", "TikTok"],
  ["li_fat_id", "LinkedIn"],
  ["twclid", "Twitter"],
  ["sccid", "Snapchat"],
  ["rdt_cid", "reddit"],
  ["epik", "Pinterest"]
]

/**
 * Click ids that a network adds to organic and paid links alike, so they
 * identify the network but not whether the click was paid.
 */
const SOCIAL_CLICK_IDS: ReadonlyArray<readonly [param: string, sourceName: string]> = [
  ["fbclid", "Facebook"],
  ["igshid", "instagram"]
]

/** Paid UTM mediums after normalization (lower case, runs of space and "-" turned into "_"). */
const PAID_MEDIUMS: ReadonlySet<string> = new Set([
  "cpc",
  "ppc",
  "cpm",
  "cpv",
  "cpa",
  "cpp",
  "sem",
  "adwords",
  "paid",
  "paidsearch",
  "paid_search"
])

const EMAIL_MEDIUMS: ReadonlySet<string> = new Set(["email", "e_mail", "mail", "newsletter", "newsletters"])

/** Short utm_source values that name a social network. */
const SOCIAL_SOURCE_ALIASES: ReadonlyMap<string, string> = new Map([
  ["fb", "Facebook"],
  ["ig", "instagram"],
  ["x", "Twitter"]
])

/** Generic keyword parameters, read only for hosts that look like an unlisted search engine. */
const GENERIC_KEYWORD_PARAMS: ReadonlyArray<string> = [
  "q",
  "query",
  "text",
  "wd",
  "keyword",
  "keywords",
  "searchfor",
  "search_query"
]

/** Upper bound for free text copied from a URL into the result. */
const MAX_TEXT_LENGTH = 500

const SCHEMELESS_HOST = /^[a-z0-9-]+(?:\.[a-z0-9-]+)+(?::\d+)?(?:[/?#]|$)/i
const HTTP_URL = /^https?:\/\//i
const MEDIUM_SEPARATORS = /[\s-]+/g
const PLUS_SIGNS = /\+/g

// ---------------------------------------------------------------------------
// Small helpers

function result(
  trafficSource: TrafficSourceKind,
  sourceName: string | null,
  searchTerm: string | null,
  referrerDomain: string | null
): TrafficSourceResult {
  return { trafficSource, sourceName, searchTerm, referrerDomain }
}

/** Trims a value and caps its length, or returns null for an empty value. */
function cleanText(value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null
  let text = value.trim()
  if (text === "") return null
  if (text.length > MAX_TEXT_LENGTH) {
    text = text.slice(0, MAX_TEXT_LENGTH)
    // Drop a high surrogate left without its pair by the cut.
    const last = text.charCodeAt(text.length - 1)
    if (last >= 0xd800 && last <= 0xdbff) text = text.slice(0, -1)
  }
  return text
}

function normalizeMedium(value: string): string {
  return value.trim().toLowerCase().replace(MEDIUM_SEPARATORS, "_")
}

function isPaidMedium(medium: string): boolean {
  return PAID_MEDIUMS.has(medium) || medium.startsWith("paid")
}

function isEmailMedium(medium: string): boolean {
  return (
    EMAIL_MEDIUMS.has(medium) ||
    medium.startsWith("email") ||
    medium.startsWith("e_mail") ||
    medium.includes("newsletter")
  )
}

/**
 * Reads a query string into a map of lower-case keys to the first non-empty
 * value. URLSearchParams decodes "+" as a space and does not throw on
 * malformed percent-encoding.
 */
function readParams(query: string, into: Map<string, string> = new Map()): Map<string, string> {
  if (query === "") return into
  for (const [key, value] of new URLSearchParams(query)) {
    const name = key.toLowerCase()
    if (value !== "" && !into.has(name)) into.set(name, value)
  }
  return into
}

/**
 * Reads the query of a page URL or path. Parameters after a "?" inside the
 * fragment, as hash-routed single-page apps write them, are read too but lose
 * to the real query.
 */
function readPageParams(pageUrl: string): Map<string, string> {
  const hash = pageUrl.indexOf("#")
  const beforeHash = hash === -1 ? pageUrl : pageUrl.slice(0, hash)
  const question = beforeHash.indexOf("?")
  const params = readParams(question === -1 ? "" : beforeHash.slice(question + 1))

  if (hash !== -1) {
    const fragment = pageUrl.slice(hash + 1)
    const fragmentQuestion = fragment.indexOf("?")
    if (fragmentQuestion !== -1) readParams(fragment.slice(fragmentQuestion + 1), params)
  }
  return params
}

function decodePathComponent(value: string): string {
  const spaced = value.replace(PLUS_SIGNS, " ")
  try {
    return decodeURIComponent(spaced)
  } catch {
    return spaced
  }
}

function stripTrailingDot(host: string): string {
  return host.endsWith(".") ? host.slice(0, -1) : host
}

function stripWww(host: string): string {
  return host.startsWith("www.") ? host.slice(4) : host
}

/** Registrable domain, counting private suffixes such as github.io, or the host itself for IPs and single labels. */
function registrableKey(host: string): string {
  return parseHost(host, { extractHostname: false, allowPrivateDomains: true }).domain ?? host
}

function hostOf(value: string): string | null {
  const text = value.trim().toLowerCase()
  if (text === "") return null
  if (!text.includes("/") && !text.includes(":")) return stripTrailingDot(text)
  const url = URL.parse(text.includes("://") ? text : `http://${text}`)
  return url === null || url.hostname === "" ? null : stripTrailingDot(url.hostname)
}

function canonicalSourceName(value: string): string {
  const byName = HOST_LISTS.byName.get(value.toLowerCase())?.[0]
  if (byName !== undefined) return byName.name
  const byHost = HOST_LISTS.byHost.get(stripWww(value.toLowerCase()))?.[0]
  return byHost?.name ?? SOCIAL_SOURCE_ALIASES.get(value.toLowerCase()) ?? value
}

function isSocialSource(value: string): boolean {
  const key = value.trim().toLowerCase()
  if (SOCIAL_SOURCE_ALIASES.has(key)) return true
  const named = HOST_LISTS.byName.get(key) ?? HOST_LISTS.byHost.get(stripWww(key)) ?? []
  return named.some((entry) => entry.kind === "social")
}

// ---------------------------------------------------------------------------
// Referrer analysis

interface WebReferrer {
  readonly type: "web"
  readonly host: string
  /** Registrable domain with private suffixes, or the host for IPs and single labels. */
  readonly registrable: string
  readonly displayDomain: string
  readonly pathname: string
  readonly pathAndQuery: string
  readonly query: string
  readonly fragment: string
  readonly matches: ReadonlyArray<ListMatch>
  /** Labels left of the ICANN public suffix. */
  readonly labels: ReadonlyArray<string>
  /** Labels left of the ICANN registrable domain. */
  readonly subdomainLabels: ReadonlyArray<string>
}

interface AppReferrer {
  readonly type: "app"
  readonly appId: string
  readonly matches: ReadonlyArray<ListMatch>
}

type Referrer = { readonly type: "none" } | { readonly type: "invalid" } | WebReferrer | AppReferrer

interface ListMatch {
  readonly entry: ListEntry
  /** True when the entry was found through a parent domain of the referrer host. */
  readonly viaParent: boolean
  /** True when that parent is the registrable domain itself, e.g. google.com for docs.google.com. */
  readonly atRegistrableDomain: boolean
}

function pathHasPrefix(pathname: string, prefix: string): boolean {
  return pathname === prefix || pathname.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`)
}

function entriesForKey(key: string, pathname: string): ReadonlyArray<ListEntry> | undefined {
  const rules = HOST_LISTS.byHostPath.get(key)
  if (rules !== undefined) {
    for (const rule of rules) {
      if (pathHasPrefix(pathname, rule.prefix)) return rule.entries
    }
  }
  return HOST_LISTS.byHost.get(key)
}

/**
 * Lists the lookup keys for one host: the host, the host with its public
 * suffix replaced by "{}" (Matomo's "google.{}"), and the host with each
 * label left of the suffix replaced by "{}" ("{}.bing.com", "images.{}.ask.com").
 */
function lookupKeys(host: string, suffix: string | null): string[] {
  const keys = [host]
  if (suffix === null || suffix === "" || !host.endsWith(`.${suffix}`)) return keys

  const stem = host.slice(0, host.length - suffix.length - 1)
  keys.push(`${stem}.{}`)

  const labels = stem.split(".")
  for (let i = 0; i < labels.length; i++) {
    const replaced = labels.slice()
    replaced[i] = "{}"
    keys.push(`${replaced.join(".")}.${suffix}`)
  }
  return keys
}

/**
 * Finds list entries for a referrer host, most specific first: the host and
 * its www-less form, then each parent domain up to the registrable domain.
 */
function findListMatches(host: string, pathname: string, suffix: string | null, registrable: string | null): ListMatch[] {
  const matches: ListMatch[] = []
  const add = (entries: ReadonlyArray<ListEntry>, viaParent: boolean, atRegistrableDomain: boolean): void => {
    for (const entry of entries) {
      if (!matches.some((match) => match.entry === entry)) matches.push({ entry, viaParent, atRegistrableDomain })
    }
  }
  const lookUp = (candidate: string, viaParent: boolean): void => {
    const atRegistrableDomain = viaParent && candidate === registrable
    for (const key of lookupKeys(candidate, suffix)) {
      const entries = entriesForKey(key, pathname)
      if (entries !== undefined) add(entries, viaParent, atRegistrableDomain)
    }
  }

  const bare = stripWww(host)
  lookUp(host, false)
  if (bare !== host) lookUp(bare, false)

  if (registrable === null) return matches
  let parent = bare
  while (parent.length > registrable.length) {
    const dot = parent.indexOf(".")
    if (dot === -1) break
    parent = parent.slice(dot + 1)
    lookUp(parent, true)
  }
  return matches
}

function analyzeWebReferrer(url: URL): Referrer {
  const host = stripTrailingDot(url.hostname.toLowerCase())
  if (host === "") return { type: "invalid" }

  const icann = parseHost(host, { extractHostname: false })
  const suffix = icann.isIp === true ? null : icann.publicSuffix
  const icannDomain = icann.isIp === true ? null : icann.domain
  const pathname = url.pathname.toLowerCase()

  const labels = suffix !== null && host.endsWith(`.${suffix}`) ? host.slice(0, -suffix.length - 1).split(".") : []
  const subdomainLabels = icannDomain !== null && host.endsWith(`.${icannDomain}`)
    ? host.slice(0, -icannDomain.length - 1).split(".")
    : []

  return {
    type: "web",
    host,
    registrable: registrableKey(host),
    displayDomain: stripWww(host),
    pathname,
    pathAndQuery: url.pathname + url.search,
    query: url.search.slice(1),
    fragment: url.hash.slice(1),
    matches: findListMatches(host, pathname, suffix, icannDomain),
    labels,
    subdomainLabels
  }
}

function analyzeReferrer(raw: string | null | undefined): Referrer {
  const text = raw?.trim() ?? ""
  if (text === "") return { type: "none" }

  let url = URL.parse(text)
  if (url === null && SCHEMELESS_HOST.test(text)) url = URL.parse(`http://${text}`)
  if (url === null) return { type: "invalid" }

  if (url.protocol === "http:" || url.protocol === "https:") return analyzeWebReferrer(url)

  if (url.protocol === "android-app:" || url.protocol === "ios-app:") {
    const appId = url.hostname.toLowerCase()
    if (appId === "") return { type: "invalid" }
    const entries = HOST_LISTS.byHost.get(appId) ?? []
    return {
      type: "app",
      appId,
      matches: entries.map((entry) => ({ entry, viaParent: false, atRegistrableDomain: false }))
    }
  }

  // about:, file:, data:, chrome: and other schemes carry no traffic source.
  return { type: "invalid" }
}

/**
 * Drops search entries reached only through the registrable domain, so that
 * docs.google.com does not count as Google search while news.google.com does.
 */
function usableMatches(referrer: WebReferrer | AppReferrer): ListMatch[] {
  return referrer.matches.filter((match) => !(match.entry.kind === "search" && match.atRegistrableDomain))
}

function referrerParams(referrer: WebReferrer): Map<string, string> {
  const params = readParams(referrer.query)
  // Some engines keep the query in the fragment: "#query=..." or "#/web/result?q=...".
  if (referrer.fragment.includes("=")) {
    const question = referrer.fragment.indexOf("?")
    readParams(question === -1 ? referrer.fragment : referrer.fragment.slice(question + 1), params)
  }
  return params
}

// NOTE: Matomo's per-engine charsets (gb2312, windows-1251, EUC-KR and others)
// are not applied, so a term sent in a legacy encoding comes out garbled.
function searchTermFor(entry: ListEntry, referrer: Referrer, params: Map<string, string> | null): string | null {
  if (referrer.type !== "web" || params === null) return null
  for (const param of entry.params) {
    const value = cleanText(params.get(param))
    if (value !== null) return value
  }
  for (const pattern of entry.pathPatterns) {
    const captured = pattern.exec(referrer.pathAndQuery)?.[1]
    if (captured !== undefined) {
      const value = cleanText(decodePathComponent(captured))
      if (value !== null) return value
    }
  }
  return null
}

interface ListVerdict {
  readonly kind: ListKind
  readonly name: string
  readonly searchTerm: string | null
}

/**
 * Chooses among the list entries that matched a referrer. A host listed both
 * as a search engine and as a social network (www.facebook.com) is search
 * only when the URL carries a search term.
 */
function listVerdict(referrer: WebReferrer | AppReferrer): ListVerdict | null {
  const matches = usableMatches(referrer)
  const primary = matches[0]
  if (primary === undefined) return null
  if (primary.entry.kind !== "search") return { kind: primary.entry.kind, name: primary.entry.name, searchTerm: null }

  const params = referrer.type === "web" ? referrerParams(referrer) : null
  for (const match of matches) {
    if (match.entry.kind !== "search") continue
    const term = searchTermFor(match.entry, referrer, params)
    if (term !== null) return { kind: "search", name: match.entry.name, searchTerm: term }
  }

  const social = matches.find((match) => match.entry.kind === "social")
  if (social !== undefined) return { kind: "social", name: social.entry.name, searchTerm: null }
  return { kind: "search", name: primary.entry.name, searchTerm: null }
}

/** Webmail by hostname shape: a "mail" or "webmail…" label left of the registrable domain. */
function looksLikeWebmail(referrer: WebReferrer): boolean {
  return referrer.subdomainLabels.some((label) => label === "mail" || label.startsWith("webmail"))
}

/**
 * Search term of an unlisted search engine: a hostname label containing
 * "search" (but not "research") and a generic keyword parameter.
 */
function unlistedSearchTerm(referrer: WebReferrer): string | null {
  if (!referrer.labels.some((label) => label.includes("search") && !label.includes("research"))) return null
  const params = readParams(referrer.query)
  for (const param of GENERIC_KEYWORD_PARAMS) {
    const value = cleanText(params.get(param))
    if (value !== null) return value
  }
  return null
}

/** Mastodon instances cannot be listed, but many are named mastodon.* or mstdn.*. */
function looksLikeMastodon(referrer: WebReferrer): boolean {
  return referrer.labels.some((label) => label === "mastodon" || label === "mstdn")
}

function ownRegistrableDomains(ownDomains: ReadonlyArray<string>, pageUrl: string): Set<string> {
  const own = new Set<string>()
  for (const domain of ownDomains) {
    const host = hostOf(domain)
    if (host !== null) own.add(registrableKey(host))
  }
  if (HTTP_URL.test(pageUrl)) {
    const host = hostOf(pageUrl)
    if (host !== null) own.add(registrableKey(host))
  }
  return own
}

// ---------------------------------------------------------------------------
// Classification

function firstParam(
  params: ReadonlyMap<string, string>,
  table: ReadonlyArray<readonly [param: string, sourceName: string]>
): string | null {
  for (const [param, sourceName] of table) {
    if (params.has(param)) return sourceName
  }
  return null
}

/** Names an unlisted referrer by its registrable domain, or an app by its package id. */
function unlistedReferrerName(referrer: Referrer): string | null {
  if (referrer.type === "web") return referrer.registrable
  if (referrer.type === "app") return referrer.appId
  return null
}

function utmValue(inputValue: string | null | undefined, params: ReadonlyMap<string, string>, param: string): string | null {
  return cleanText(inputValue) ?? cleanText(params.get(param))
}

/**
 * Classifies one page view. Malformed input does not throw: a referrer that
 * is not a URL gives "unknown", and malformed UTM or page URL values are ignored.
 */
export function classifyTrafficSource(input: TrafficSourceInput): TrafficSourceResult {
  const pageUrl = input.pageUrl ?? ""
  const pageParams = readPageParams(pageUrl)
  const utmSource = utmValue(input.utm?.source, pageParams, "utm_source")
  const utmMediumRaw = utmValue(input.utm?.medium, pageParams, "utm_medium")
  const utmCampaign = utmValue(input.utm?.campaign, pageParams, "utm_campaign")
  const utmTerm = utmValue(input.utm?.term, pageParams, "utm_term")
  const medium = utmMediumRaw === null ? null : normalizeMedium(utmMediumRaw)
  const declaredSource = utmSource === null ? null : canonicalSourceName(utmSource)

  const referrer = analyzeReferrer(input.referrer)
  const referrerDomain = referrer.type === "web" ? referrer.displayDomain : null
  const verdict = referrer.type === "web" || referrer.type === "app" ? listVerdict(referrer) : null
  const referrerName = verdict?.name ?? unlistedReferrerName(referrer)

  const own = ownRegistrableDomains(input.ownDomains ?? [], pageUrl)
  const isInternal = referrer.type === "web" && own.has(referrer.registrable)

  // Rules 1a-1d: paid clicks. Paid social becomes a campaign.
  const paidClickSource = firstParam(pageParams, PAID_SEARCH_CLICK_IDS)
  if (paidClickSource !== null) {
    const term = verdict?.kind === "search" ? verdict.searchTerm : null
    return result("paid_search", declaredSource ?? paidClickSource, term ?? utmTerm, referrerDomain)
  }
  if (medium !== null && isPaidMedium(medium)) {
    const socialPaid =
      medium.includes("social") ||
      (utmSource !== null ? isSocialSource(utmSource) : verdict?.kind === "social")
    if (socialPaid) return result("campaign", declaredSource ?? referrerName, utmTerm, referrerDomain)
    const term = verdict?.kind === "search" ? verdict.searchTerm : null
    return result("paid_search", declaredSource ?? referrerName, term ?? utmTerm, referrerDomain)
  }
  if (verdict?.kind === "paid") {
    return result("paid_search", declaredSource ?? verdict.name, utmTerm, referrerDomain)
  }
  const paidSocialSource = firstParam(pageParams, PAID_SOCIAL_CLICK_IDS)
  if (paidSocialSource !== null) {
    return result("campaign", declaredSource ?? paidSocialSource, utmTerm, referrerDomain)
  }

  // Rules 2a-2b: email by UTM medium (or by source when there is no medium) and webmail referrers.
  let emailByUtm = false
  if (medium !== null) emailByUtm = isEmailMedium(medium)
  else if (utmSource !== null) emailByUtm = isEmailMedium(normalizeMedium(utmSource))
  if (emailByUtm) {
    const webmailName = verdict?.kind === "email" ? verdict.name : null
    return result("email", declaredSource ?? webmailName ?? referrerName, null, referrerDomain)
  }
  if (!isInternal && verdict?.kind === "email") {
    return result("email", verdict.name, null, referrerDomain)
  }
  if (!isInternal && verdict === null && referrer.type === "web" && looksLikeWebmail(referrer)) {
    return result("email", referrer.registrable, null, referrerDomain)
  }

  // Rule 3a: any other tagged campaign.
  if (utmSource !== null || utmCampaign !== null) {
    return result("campaign", declaredSource ?? referrerName, utmTerm, referrerDomain)
  }

  // Rule 3b: click ids that name a social network but not whether the click was paid.
  const socialClickSource = firstParam(pageParams, SOCIAL_CLICK_IDS)
  if (socialClickSource !== null) return result("social", socialClickSource, null, referrerDomain)

  // Rules 4-12: the referrer alone.
  if (referrer.type === "none") return result("direct", null, null, null)
  if (referrer.type === "invalid") return result("unknown", null, null, null)
  if (isInternal && referrer.type === "web") return result("internal", referrer.registrable, null, referrerDomain)

  if (verdict !== null) {
    switch (verdict.kind) {
      case "search":
        return result("organic_search", verdict.name, verdict.searchTerm, referrerDomain)
      case "social":
        return result("social", verdict.name, null, referrerDomain)
      case "ai":
        // The enum has no AI channel, so the assistant's name goes to sourceName.
        return result("referral", verdict.name, null, referrerDomain)
      case "email":
        return result("email", verdict.name, null, referrerDomain)
    }
  }

  if (referrer.type === "web") {
    const unlistedTerm = unlistedSearchTerm(referrer)
    if (unlistedTerm !== null) return result("organic_search", referrer.registrable, unlistedTerm, referrerDomain)
    if (looksLikeMastodon(referrer)) return result("social", "Mastodon", null, referrerDomain)
  }
  return result("referral", referrerName, null, referrerDomain)
}
