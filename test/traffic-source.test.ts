import { readFileSync } from "node:fs"

import { describe, expect, it } from "vitest"

import {
  classifyTrafficSource,
  TRAFFIC_SOURCES,
  type TrafficSourceInput,
  type TrafficSourceKind,
  type TrafficSourceResult
} from "../src/services/TrafficSource.ts"

// Each third-party vector file is a 30% sample of a larger set, so the
// floors below leave room for the held-back part.
const TESTDATA_DIR = new URL("../../shared/testdata/", import.meta.url)

interface ReferrerVector {
  readonly referrerUrl: string
  readonly pageUrl: string
  readonly internalDomains: ReadonlyArray<string>
  readonly expectedChannel: TrafficSourceKind
  readonly expectedSource: string | null
  readonly expectedSearchTerm: string | null
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
}

function optionalString(value: unknown): string | null {
  return typeof value === "string" ? value : null
}

/**
 * Maps a vector's channel to our enum. The files already use our names except
 * "paid", and the raw mediums are mapped too in case a file keeps them.
 */
function toTrafficSource(channel: string): TrafficSourceKind {
  const mapped: Record<string, TrafficSourceKind> = {
    search: "organic_search",
    paid: "paid_search",
    unknown: "referral",
    chatbot: "referral",
    ai_assistant: "referral"
  }
  const known = TRAFFIC_SOURCES.find((kind) => kind === channel)
  const result = mapped[channel] ?? known
  if (result === undefined) throw new Error(`Unexpected expected_channel ${JSON.stringify(channel)}`)
  return result
}

function readVectors(file: string): ReferrerVector[] {
  const parsed: unknown = JSON.parse(readFileSync(new URL(file, TESTDATA_DIR), "utf8"))
  const vectors = isRecord(parsed) ? parsed["vectors"] : undefined
  if (!Array.isArray(vectors)) throw new Error(`${file}: expected an object with a "vectors" array`)

  return vectors.map((vector, index) => {
    if (
      !isRecord(vector) ||
      typeof vector["referrer_url"] !== "string" ||
      typeof vector["page_url"] !== "string" ||
      typeof vector["expected_channel"] !== "string"
    ) {
      throw new Error(`${file}: vector ${index} lacks referrer_url, page_url or expected_channel`)
    }
    const internal = vector["internal_domains"]
    return {
      referrerUrl: vector["referrer_url"],
      pageUrl: vector["page_url"],
      internalDomains: Array.isArray(internal) ? internal.filter((item) => typeof item === "string") : [],
      expectedChannel: toTrafficSource(vector["expected_channel"]),
      expectedSource: optionalString(vector["expected_source"]),
      expectedSearchTerm: optionalString(vector["expected_search_term"])
    }
  })
}

interface Accuracy {
  readonly count: number
  readonly channel: number
  readonly sourceName: number
  readonly searchTerm: number
  readonly channelMisses: ReadonlyArray<string>
}

function measure(vectors: ReadonlyArray<ReferrerVector>): Accuracy {
  let channel = 0
  let sourceName = 0
  let searchTerm = 0
  const channelMisses: string[] = []

  for (const vector of vectors) {
    const pageHost = URL.parse(vector.pageUrl)?.hostname
    const actual = classifyTrafficSource({
      referrer: vector.referrerUrl,
      pageUrl: vector.pageUrl,
      ownDomains: pageHost === undefined ? vector.internalDomains : [pageHost, ...vector.internalDomains]
    })
    if (actual.trafficSource === vector.expectedChannel) channel++
    else channelMisses.push(`${vector.referrerUrl}: expected ${vector.expectedChannel}, got ${actual.trafficSource}`)
    if (actual.sourceName === vector.expectedSource) sourceName++
    if (actual.searchTerm === vector.expectedSearchTerm) searchTerm++
  }

  const count = vectors.length
  return {
    count,
    channel: channel / count,
    sourceName: sourceName / count,
    searchTerm: searchTerm / count,
    channelMisses
  }
}

function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`
}

describe("traffic source third-party vectors", () => {
  const files: ReadonlyArray<{ file: string; channelFloor: number }> = [
    { file: "referrer_snowplow_scala.json", channelFloor: 0.95 },
    { file: "referrer_matomo_lists.json", channelFloor: 0.9 }
  ]

  for (const { file, channelFloor } of files) {
    it(`${file} channel accuracy`, () => {
      const accuracy = measure(readVectors(file))
      console.log(
        `${file}: ${accuracy.count} vectors, channel ${percent(accuracy.channel)}, ` +
          `source name ${percent(accuracy.sourceName)}, search term ${percent(accuracy.searchTerm)}`
      )
      // The miss list is part of the failure message, so a drop shows which vectors changed.
      expect(accuracy.channel, accuracy.channelMisses.join("\n")).toBeGreaterThanOrEqual(channelFloor)
    })
  }
})

interface HandCase {
  readonly name: string
  readonly input: TrafficSourceInput
  readonly expected: Partial<TrafficSourceResult>
}

const OWN = ["www.example.com"]

const HAND_CASES: ReadonlyArray<HandCase> = [
  // Rule 1: paid search.
  {
    name: "gclid is paid search",
    input: { referrer: "", pageUrl: "/pricing?gclid=abc", ownDomains: OWN },
    expected: { trafficSource: "paid_search", sourceName: "Google" }
  },
  {
    name: "gbraid is paid search",
    input: { referrer: "", pageUrl: "/?gbraid=abc", ownDomains: OWN },
    expected: { trafficSource: "paid_search", sourceName: "Google" }
  },
  {
    name: "wbraid is paid search",
    input: { referrer: "", pageUrl: "/?wbraid=abc", ownDomains: OWN },
    expected: { trafficSource: "paid_search", sourceName: "Google" }
  },
  {
    name: "msclkid is paid Bing",
    input: { referrer: "https://www.bing.com/", pageUrl: "/?msclkid=abc", ownDomains: OWN },
    expected: { trafficSource: "paid_search", sourceName: "Bing", referrerDomain: "bing.com" }
  },
  {
    name: "yclid is paid Yandex",
    input: { referrer: "", pageUrl: "https://www.example.com/?yclid=1", ownDomains: OWN },
    expected: { trafficSource: "paid_search", sourceName: "Yandex" }
  },
  {
    name: "click id beats an email medium",
    input: { referrer: "", pageUrl: "/?gclid=abc&utm_medium=email", ownDomains: OWN },
    expected: { trafficSource: "paid_search" }
  },
  {
    name: "CPC medium in capitals",
    input: {
      referrer: "https://www.google.de/search?q=crm+software",
      pageUrl: "/",
      utm: { source: "google", medium: "CPC", term: "crm" },
      ownDomains: OWN
    },
    expected: { trafficSource: "paid_search", sourceName: "Google", searchTerm: "crm software" }
  },
  {
    name: "paid medium keeps utm_term",
    input: { referrer: "", pageUrl: "/?utm_source=bing&utm_medium=Paid%20Search&utm_term=lead+forms", ownDomains: OWN },
    expected: { trafficSource: "paid_search", sourceName: "Bing", searchTerm: "lead forms" }
  },
  {
    name: "cpm medium counts as paid",
    input: { referrer: "", pageUrl: "/?utm_source=dv360&utm_medium=cpm", ownDomains: OWN },
    expected: { trafficSource: "paid_search", sourceName: "dv360" }
  },
  {
    name: "ad redirector referrer is paid",
    input: { referrer: "https://www.googleadservices.com/pagead/aclk?sa=L", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "paid_search", sourceName: "Google" }
  },
  {
    name: "cpc on a social source is a campaign",
    input: { referrer: "", pageUrl: "/?utm_source=Facebook&utm_medium=cpc&utm_campaign=spring", ownDomains: OWN },
    expected: { trafficSource: "campaign", sourceName: "Facebook" }
  },
  {
    name: "paid_social medium is a campaign",
    input: { referrer: "", pageUrl: "/?utm_source=newsfeed&utm_medium=paid-social", ownDomains: OWN },
    expected: { trafficSource: "campaign", sourceName: "newsfeed" }
  },
  {
    name: "ttclid is a TikTok campaign",
    input: { referrer: "", pageUrl: "/?ttclid=xyz", ownDomains: OWN },
    expected: { trafficSource: "campaign", sourceName: "TikTok" }
  },
  {
    name: "li_fat_id is a LinkedIn campaign",
    input: { referrer: "https://www.linkedin.com/", pageUrl: "/?li_fat_id=xyz", ownDomains: OWN },
    expected: { trafficSource: "campaign", sourceName: "LinkedIn" }
  },

  // Rule 2: email.
  {
    name: "Email medium in mixed case",
    input: { referrer: "", pageUrl: "/", utm: { source: "weekly", medium: "Email" }, ownDomains: OWN },
    expected: { trafficSource: "email", sourceName: "weekly" }
  },
  {
    name: "e-mail medium",
    input: { referrer: "", pageUrl: "/?utm_medium=e-mail&utm_campaign=launch", ownDomains: OWN },
    expected: { trafficSource: "email" }
  },
  {
    name: "newsletter source without medium",
    input: { referrer: "", pageUrl: "/?utm_source=Newsletter", ownDomains: OWN },
    expected: { trafficSource: "email", sourceName: "Newsletter" }
  },
  {
    name: "Gmail referrer",
    input: { referrer: "https://mail.google.com/", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "email", sourceName: "Gmail", referrerDomain: "mail.google.com" }
  },
  {
    name: "Outlook referrer",
    input: { referrer: "https://outlook.live.com/mail/0/inbox", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "email", sourceName: "Outlook.com" }
  },
  {
    name: "Yahoo Mail regional host",
    input: { referrer: "https://us-mg5.mail.yahoo.com/neo/launch", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "email", sourceName: "Yahoo! Mail" }
  },
  {
    name: "unlisted webmail host",
    input: { referrer: "https://webmail.example-isp.net/read?id=4", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "email", sourceName: "example-isp.net" }
  },
  {
    name: "Gmail Android app",
    input: { referrer: "android-app://com.google.android.gm/", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "email", sourceName: "Gmail", referrerDomain: null }
  },
  {
    name: "webmail beats a campaign",
    input: { referrer: "https://mail.google.com/", pageUrl: "/?utm_source=partner&utm_campaign=q3", ownDomains: OWN },
    expected: { trafficSource: "email", sourceName: "Gmail" }
  },

  // Rule 3: campaign.
  {
    name: "utm_source alone is a campaign",
    input: { referrer: "https://news.ycombinator.com/", pageUrl: "/?utm_source=hn", ownDomains: OWN },
    expected: { trafficSource: "campaign", sourceName: "hn", referrerDomain: "news.ycombinator.com" }
  },
  {
    name: "utm_campaign alone is a campaign",
    input: { referrer: "", pageUrl: "/?utm_campaign=spring", ownDomains: OWN },
    expected: { trafficSource: "campaign", sourceName: null }
  },
  {
    name: "utm input beats page parameters",
    input: { referrer: "", pageUrl: "/?utm_medium=cpc", utm: { medium: "email" }, ownDomains: OWN },
    expected: { trafficSource: "email" }
  },
  {
    name: "UTMs in a hash route",
    input: { referrer: "", pageUrl: "/#/pricing?utm_source=partner&utm_campaign=q3", ownDomains: OWN },
    expected: { trafficSource: "campaign", sourceName: "partner" }
  },
  {
    name: "campaign on an internal referrer",
    input: { referrer: "https://www.example.com/blog", pageUrl: "/?utm_campaign=banner", ownDomains: OWN },
    expected: { trafficSource: "campaign" }
  },

  // Rule 4: organic search.
  {
    name: "Google search with a query",
    input: { referrer: "https://www.google.com/search?q=lead+capture+form", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "organic_search", sourceName: "Google", searchTerm: "lead capture form" }
  },
  {
    name: "Google country domain",
    input: { referrer: "https://www.google.co.uk/", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "organic_search", sourceName: "Google", searchTerm: null, referrerDomain: "google.co.uk" }
  },
  {
    name: "Bing country subdomain",
    input: { referrer: "https://de.bing.com/search?q=crm", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "organic_search", sourceName: "Bing", searchTerm: "crm" }
  },
  {
    name: "Yahoo nested subdomain",
    input: { referrer: "https://us.yhs4.search.yahoo.com/yhs/search?p=forms", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "organic_search", sourceName: "Yahoo!", searchTerm: "forms" }
  },
  {
    name: "term from a path template",
    input: { referrer: "https://1.cz/s/lead%20capture", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "organic_search", sourceName: "1.cz", searchTerm: "lead capture" }
  },
  {
    name: "term from a fragment",
    input: { referrer: "https://coccoc.com/search#query=lead+capture", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "organic_search", searchTerm: "lead capture" }
  },
  {
    name: "Google app referrer",
    input: {
      referrer: "android-app://com.google.android.googlequicksearchbox/https/www.google.com",
      pageUrl: "/",
      ownDomains: OWN
    },
    expected: { trafficSource: "organic_search", sourceName: "Google" }
  },
  {
    name: "scheme-less referrer",
    input: { referrer: "www.google.com/search?q=forms", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "organic_search", searchTerm: "forms" }
  },
  {
    name: "unlisted search engine",
    input: { referrer: "https://www.findersearch.example/?q=lead+forms", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "organic_search", sourceName: "findersearch.example", searchTerm: "lead forms" }
  },
  {
    name: "research host is no search",
    input: { referrer: "https://research.example.edu/?q=forms", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "referral", sourceName: "example.edu" }
  },
  {
    name: "Google Docs is a referral",
    input: { referrer: "https://docs.google.com/document/d/1", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "referral", sourceName: "google.com" }
  },

  // Rule 5: social.
  {
    name: "t.co short link",
    input: { referrer: "https://t.co/AbC123", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "social", sourceName: "Twitter" }
  },
  {
    name: "lnkd.in short link",
    input: { referrer: "https://lnkd.in/eXyZ", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "social", sourceName: "LinkedIn" }
  },
  {
    name: "fb.me short link",
    input: { referrer: "http://fb.me/abc", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "social", sourceName: "Facebook" }
  },
  {
    name: "x.com is Twitter",
    input: { referrer: "https://x.com/someone/status/1", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "social", sourceName: "Twitter" }
  },
  {
    name: "Facebook link shim",
    input: { referrer: "https://l.facebook.com/l.php?u=https%3A%2F%2Fwww.example.com", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "social", sourceName: "Facebook" }
  },
  {
    name: "Facebook subdomain",
    input: { referrer: "https://lm.facebook.com/", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "social", sourceName: "Facebook" }
  },
  {
    name: "www.facebook.com without query",
    input: { referrer: "https://www.facebook.com/", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "social", sourceName: "Facebook" }
  },
  {
    name: "Facebook search with query",
    input: { referrer: "https://www.facebook.com/search/?q=forms", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "organic_search", sourceName: "Facebook", searchTerm: "forms" }
  },
  {
    name: "Facebook Android app",
    input: { referrer: "android-app://com.facebook.katana", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "social", sourceName: "Facebook", referrerDomain: null }
  },
  {
    name: "LinkedIn Android app from Matomo",
    input: { referrer: "android-app://linkedin.android/", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "social", sourceName: "LinkedIn" }
  },
  {
    name: "fbclid without referrer",
    input: { referrer: "", pageUrl: "/?fbclid=IwAR0", ownDomains: OWN },
    expected: { trafficSource: "social", sourceName: "Facebook" }
  },
  {
    name: "Pinterest country domain",
    input: { referrer: "https://www.pinterest.co.uk/pin/1/", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "social", sourceName: "Pinterest" }
  },
  {
    name: "Mastodon instance by name",
    input: { referrer: "https://mastodon.social/@someone/1", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "social", sourceName: "Mastodon" }
  },

  // Rule 6: internal.
  {
    name: "own subdomain is internal",
    input: { referrer: "https://blog.example.com/post", pageUrl: "/pricing", ownDomains: OWN },
    expected: { trafficSource: "internal", sourceName: "example.com", referrerDomain: "blog.example.com" }
  },
  {
    name: "page host counts as own",
    input: { referrer: "https://example.com/", pageUrl: "https://www.example.com/pricing", ownDomains: [] },
    expected: { trafficSource: "internal" }
  },
  {
    name: "own domain given as URL",
    input: { referrer: "https://app.example.com/", pageUrl: "/", ownDomains: ["https://www.example.com/"] },
    expected: { trafficSource: "internal" }
  },
  {
    name: "own github.io site is internal",
    input: { referrer: "https://alice.github.io/post", pageUrl: "/", ownDomains: ["alice.github.io"] },
    expected: { trafficSource: "internal" }
  },
  {
    name: "other github.io site is referral",
    input: { referrer: "https://bob.github.io/post", pageUrl: "/", ownDomains: ["alice.github.io"] },
    expected: { trafficSource: "referral", sourceName: "bob.github.io", referrerDomain: "bob.github.io" }
  },
  {
    name: "own mail subdomain stays internal",
    input: { referrer: "https://mail.example.com/inbox", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "internal" }
  },
  {
    name: "localhost property",
    input: { referrer: "http://localhost:3000/a", pageUrl: "/", ownDomains: ["localhost"] },
    expected: { trafficSource: "internal" }
  },

  // Rule 7: referral, direct and unknown.
  {
    name: "unknown site is referral",
    input: { referrer: "https://www.some-blog.co.uk/article?id=3", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "referral", sourceName: "some-blog.co.uk", referrerDomain: "some-blog.co.uk" }
  },
  {
    name: "AI assistant is referral",
    input: { referrer: "https://chatgpt.com/", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "referral", sourceName: "ChatGPT" }
  },
  {
    name: "Grok path on x.com",
    input: { referrer: "https://x.com/i/grok?conversation=1", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "referral", sourceName: "Grok" }
  },
  {
    name: "unknown Android app",
    input: { referrer: "android-app://com.example.reader/", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "referral", sourceName: "com.example.reader", referrerDomain: null }
  },
  {
    name: "empty referrer is direct",
    input: { referrer: "", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "direct", sourceName: null, searchTerm: null, referrerDomain: null }
  },
  {
    name: "blank referrer is direct",
    input: { referrer: "   ", pageUrl: "/" },
    expected: { trafficSource: "direct" }
  },
  {
    name: "missing fields are direct",
    input: {},
    expected: { trafficSource: "direct" }
  },
  {
    name: "unparseable referrer is unknown",
    input: { referrer: "not a url", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "unknown", sourceName: null, referrerDomain: null }
  },
  {
    name: "about:blank is unknown",
    input: { referrer: "about:blank", pageUrl: "/", ownDomains: OWN },
    expected: { trafficSource: "unknown" }
  },
  {
    name: "unparseable referrer with UTMs",
    input: { referrer: "::::", pageUrl: "/?utm_source=partner", ownDomains: OWN },
    expected: { trafficSource: "campaign", sourceName: "partner" }
  }
]

describe("classifyTrafficSource rule table", () => {
  it.each(HAND_CASES)("$name", ({ input, expected }) => {
    expect(classifyTrafficSource(input)).toMatchObject(expected)
  })
})

/** Small seeded generator (mulberry32), so a failing property run is reproducible. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function pick<T>(random: () => number, items: ReadonlyArray<T>): T {
  const index = Math.floor(random() * items.length)
  for (const [position, item] of items.entries()) {
    if (position === index) return item
  }
  throw new Error("pick() needs a non-empty list")
}

function randomString(random: () => number, alphabet: string, maxLength: number): string {
  const length = Math.floor(random() * (maxLength + 1))
  let text = ""
  for (let i = 0; i < length; i++) text += alphabet.charAt(Math.floor(random() * alphabet.length))
  return text
}

const LABEL_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
const NOISE_ALPHABET = "abc:/?#&=%+.@[]\\ -_~xn--ü中\u0000\ud800\u200b0129ZAQ!$'()*,;"
const SUFFIXES = ["com", "co.uk", "de", "io", "com.au", "org", "net", "fr", "app"]

function randomLabel(random: () => number): string {
  return pick(random, ["a", "b", "x"]) + randomString(random, LABEL_ALPHABET, 10)
}

describe("traffic source properties", () => {
  it("classification never throws", () => {
    const random = seededRandom(20240601)
    const prefixes = ["", "http://", "https://", "android-app://", "//", "mailto:", "javascript:", "HTTP://"]

    for (let i = 0; i < 3000; i++) {
      const input: TrafficSourceInput = {
        referrer: pick(random, prefixes) + randomString(random, NOISE_ALPHABET, 40),
        pageUrl: pick(random, ["", "/", "https://"]) + randomString(random, NOISE_ALPHABET, 40),
        utm: {
          source: randomString(random, NOISE_ALPHABET, 8),
          medium: pick(random, [undefined, null, "", "cpc", randomString(random, NOISE_ALPHABET, 8)])
        },
        ownDomains: [randomString(random, NOISE_ALPHABET, 20)]
      }
      const outcome = classifyTrafficSource(input)
      expect(TRAFFIC_SOURCES, JSON.stringify(input)).toContain(outcome.trafficSource)
    }
  })

  it("own registrable domain is internal", () => {
    const random = seededRandom(7)
    for (let i = 0; i < 500; i++) {
      const domain = `${randomLabel(random)}.${pick(random, SUFFIXES)}`
      const subdomain = pick(random, ["", "www.", `${randomLabel(random)}.`, `${randomLabel(random)}.${randomLabel(random)}.`])
      const referrer = `https://${subdomain}${domain}/${randomString(random, LABEL_ALPHABET, 12)}?k${randomLabel(random)}=1`
      const outcome = classifyTrafficSource({ referrer, pageUrl: "/landing", ownDomains: [`www.${domain}`] })
      expect(outcome.trafficSource, referrer).toBe("internal")
    }
  })

  it("UTMs override an internal referrer", () => {
    const random = seededRandom(11)
    for (let i = 0; i < 200; i++) {
      const domain = `${randomLabel(random)}.${pick(random, SUFFIXES)}`
      const referrer = `https://${randomLabel(random)}.${domain}/`
      const campaign = randomLabel(random)
      const outcome = classifyTrafficSource({
        referrer,
        pageUrl: `/landing?utm_campaign=${campaign}`,
        ownDomains: [domain]
      })
      expect(outcome.trafficSource, referrer).toBe("campaign")
    }
  })

  it("UTM medium case does not matter", () => {
    const random = seededRandom(3)
    const mediums: ReadonlyArray<readonly [string, TrafficSourceKind]> = [
      ["cpc", "paid_search"],
      ["ppc", "paid_search"],
      ["paidsearch", "paid_search"],
      ["email", "email"],
      ["newsletter", "email"]
    ]
    for (let i = 0; i < 200; i++) {
      const [medium, expected] = pick(random, mediums)
      const mixedCase = [...medium].map((char) => (random() < 0.5 ? char.toUpperCase() : char)).join("")
      const outcome = classifyTrafficSource({ referrer: "", pageUrl: `/?utm_medium=${mixedCase}&utm_source=s` })
      expect(outcome.trafficSource, mixedCase).toBe(expected)
    }
  })
})
