/**
 * Third-party classification vectors sent through `POST /v1/events` to the
 * real service, scored on what lands in the database: `events.device_type`,
 * `events.traffic_source` and `sessions.search_term`. The unit tests score
 * the same files against the classifier functions directly. This suite checks
 * that the request headers, the event fields and the property's domains reach
 * those functions intact and that their results are stored.
 */
import { Effect, Redacted } from "effect"
import { readFileSync } from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { generateApiKey, hashApiKey, keyPrefix } from "../src/services/ApiKeyFormat.ts"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { TRAFFIC_SOURCES, type TrafficSourceKind } from "../src/services/TrafficSource.ts"
import { TEST_PEPPER } from "./support/appDatabase.ts"
import { type ServiceProcess, startService } from "./support/serviceProcess.ts"
import { createTestDatabase, type TestDatabase } from "./support/testDatabase.ts"

// Each vector file contains about 30% of its source set, and the rest is held back.
const TESTDATA = new URL("../../shared/testdata/", import.meta.url)

const INGEST_KEY = "pk_ingest_classification_key_0123"
/** Requests in flight at once. */
const CONCURRENCY = 32
const REQUEST_TIMEOUT_MS = 10_000
/** Bound for one file's test: sending, reading back and scoring. */
const FILE_TIMEOUT_MS = 120_000
const CHROME_DESKTOP =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"

let database: TestDatabase
let service: ServiceProcess
let tenantId: string

beforeAll(async () => {
  database = await createTestDatabase()
  service = await startService({
    env: {
      DATABASE_URL: Redacted.value(database.url).href,
      IP_HASH_PEPPER: TEST_PEPPER,
      INGEST_RATE_LIMIT_PER_MINUTE: "10000000",
      INGEST_API_KEY: INGEST_KEY
    }
  })
  const rows = await owner("INSERT INTO tenants (name) VALUES ('Referrer vectors') RETURNING id")
  tenantId = String(rows[0]?.["id"])
})

afterAll(async () => {
  await service?.stop()
})

/** Runs one statement as the owner and returns its rows. */
const owner = (text: string, values?: ReadonlyArray<unknown>) =>
  Effect.runPromise(withOwnerClient(database.url, (client) =>
    Effect.map(ownerQuery(client, text, values), (result) => result.rows)))

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const loadRows = (file: string): ReadonlyArray<unknown> => {
  const parsed: unknown = JSON.parse(readFileSync(new URL(file, TESTDATA), "utf8"))
  if (!isRecord(parsed) || !Array.isArray(parsed["vectors"])) {
    throw new Error(`${file}: expected an object with a "vectors" array`)
  }
  return parsed["vectors"]
}

// ---------------------------------------------------------------------------
// Sending events

interface Delivery {
  readonly status: number
  readonly body: string
}

/**
 * Posts one event as JSON and returns the status and body. A network error
 * or timeout becomes status 0 with the error as the body, so that one lost
 * request counts as a miss instead of ending the run.
 */
const postEvent = async (
  key: string,
  event: Readonly<Record<string, string>>,
  headers: Readonly<Record<string, string>>
): Promise<Delivery> => {
  try {
    const response = await fetch(`${service.baseUrl}/v1/events`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json", "x-api-key": key },
      body: JSON.stringify(event),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)
    })
    return { status: response.status, body: await response.text() }
  } catch (error) {
    return { status: 0, body: String(error) }
  }
}

/** Runs `worker` on every item with at most `limit` calls pending, and keeps the input order. */
const mapConcurrently = async <T, R>(
  items: ReadonlyArray<T>,
  limit: number,
  worker: (item: T, index: number) => Promise<R>
): Promise<Array<R>> => {
  const results: Array<R> = []
  // The workers share one iterator, so each item is taken exactly once.
  const pending = items.entries()
  const run = async () => {
    for (const [index, item] of pending) {
      results[index] = await worker(item, index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run))
  return results
}

/** Describes the first few non-202 responses, for a failure message. */
const describeFailures = (deliveries: ReadonlyArray<Delivery>, label: (index: number) => string): string =>
  deliveries
    .flatMap((delivery, index) => delivery.status === 202 ? [] : [`${label(index)}: ${delivery.status} ${delivery.body}`])
    .slice(0, 20)
    .join("\n")

const countAccepted = (deliveries: ReadonlyArray<Delivery>): number =>
  deliveries.filter((delivery) => delivery.status === 202).length

// ---------------------------------------------------------------------------
// Reading results back as the owner

interface StoredEvent {
  readonly deviceType: string
  readonly trafficSource: string
  readonly searchTerm: string | null
}

/** Reads the stored page view and its session for each anonId, keyed by anonId. */
const readStoredEvents = async (anonIds: ReadonlyArray<string>): Promise<Map<string, StoredEvent>> => {
  // The tables were filled seconds ago, before autovacuum gathered statistics.
  // Without them the planner repeats the anon_id lookup for every event row,
  // and reading back the 11,379 Matomo rows took over two minutes.
  await owner("ANALYZE visitors, events, sessions")
  const rows = await owner(
    `SELECT v.anon_id, e.device_type::text AS device_type, e.traffic_source::text AS traffic_source, s.search_term
     FROM events e
     JOIN visitors v ON v.tenant_id = e.tenant_id AND v.id = e.visitor_id
     JOIN sessions s ON s.tenant_id = e.tenant_id AND s.id = e.session_id
     WHERE v.anon_id = ANY ($1::text[])`,
    [anonIds]
  )
  const stored = new Map<string, StoredEvent>()
  for (const row of rows) {
    const anonId = row["anon_id"]
    const searchTerm = row["search_term"]
    if (typeof anonId !== "string") continue
    stored.set(anonId, {
      deviceType: String(row["device_type"]),
      trafficSource: String(row["traffic_source"]),
      searchTerm: typeof searchTerm === "string" ? searchTerm : null
    })
  }
  return stored
}

interface Score {
  readonly correct: number
  readonly total: number
}

const ratio = (score: Score): number => score.correct / score.total

const percent = (score: Score): string =>
  `${(100 * ratio(score)).toFixed(2)}% (${score.correct}/${score.total})`

const seconds = (startedAt: number): string => `${((performance.now() - startedAt) / 1000).toFixed(1)} s`

// ---------------------------------------------------------------------------
// User agents

interface UserAgentVector {
  readonly ua: string
  readonly headers: Readonly<Record<string, unknown>> | undefined
  readonly expectedDeviceType: string | undefined
  readonly expectedBot: boolean | undefined
  readonly note: string | undefined
}

/** Reads a row the way `test/user-agent.test.ts` does. */
const toUserAgentVector = (row: unknown, file: string, index: number): UserAgentVector => {
  if (!isRecord(row) || typeof row["ua"] !== "string") {
    throw new Error(`${file}: vector ${index} has no "ua" string`)
  }
  const headers = row["headers"]
  const expectedDeviceType = row["expected_device_type"]
  const expectedBot = row["expected_bot"]
  const note = row["note"]
  // The crawler file marks its rows with expected: "bot" instead.
  let expectedBotFlag: boolean | undefined
  if (typeof expectedBot === "boolean") {
    expectedBotFlag = expectedBot
  } else if (row["expected"] === "bot") {
    expectedBotFlag = true
  }
  return {
    ua: row["ua"],
    headers: isRecord(headers) ? headers : undefined,
    expectedDeviceType: typeof expectedDeviceType === "string" ? expectedDeviceType : undefined,
    expectedBot: expectedBotFlag,
    note: typeof note === "string" ? note : undefined
  }
}

// Matomo fixtures give client hints either as request headers in any case
// ("Sec-CH-UA-Mobile: ?1") or as the fields of the JavaScript
// navigator.userAgentData API ("mobile": "1", "model": "Tab 10"). Both become
// lower-case request headers, as in the unit test, and array values are
// dropped there and here.
const JS_HINT_HEADERS: Readonly<Record<string, string>> = {
  mobile: "sec-ch-ua-mobile",
  platform: "sec-ch-ua-platform",
  model: "sec-ch-ua-model"
}

const toHintHeaders = (headers: Readonly<Record<string, unknown>> | undefined): Record<string, string> => {
  const hints: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (typeof value !== "string") {
      continue
    }
    const headerName = JS_HINT_HEADERS[name] ?? name.toLowerCase()
    if (name === "mobile") {
      hints[headerName] = value === "1" || value === "true" ? "?1" : "?0"
    } else if (name in JS_HINT_HEADERS) {
      hints[headerName] = `"${value}"`
    } else {
      hints[headerName] = value
    }
  }
  return hints
}

/**
 * Returns the header text that carries `ua`. HTTP header values are bytes,
 * and fetch sends each character up to U+00FF as one byte, which Node's
 * parser reads back as the same character. A UA with characters above U+00FF
 * is sent as its UTF-8 bytes, as a UTF-8 client sends it, so the service
 * reads those bytes as Latin-1 text.
 */
const toHeaderText = (ua: string): string =>
  /[^\u0000-\u00ff]/.test(ua) ? Buffer.from(ua, "utf8").toString("latin1") : ua

interface UserAgentRun {
  readonly device: Score
  readonly bot: Score
  readonly notedRows: number
  readonly accepted: number
  readonly failures: string
}

/**
 * Sends one page view per vector with the vector's UA and client hints as
 * request headers, then scores the stored device type. The bot flag is scored
 * on rows that have one, and the device type on rows that have one and no note.
 */
const runUserAgentFile = async (file: string): Promise<UserAgentRun> => {
  const startedAt = performance.now()
  const vectors = loadRows(file).map((row, index) => toUserAgentVector(row, file, index))
  const slug = file.replace(/\.json$/, "")
  const anonIds = vectors.map((_vector, index) => `${slug}-${index}`)

  const deliveries = await mapConcurrently(vectors, CONCURRENCY, (vector, index) =>
    postEvent(
      INGEST_KEY,
      { eventId: `event-${slug}-${index}`, anonId: `${slug}-${index}`, eventType: "page_view", path: "/" },
      { ...toHintHeaders(vector.headers), "user-agent": toHeaderText(vector.ua) }
    ))
  const stored = await readStoredEvents(anonIds)

  let deviceCorrect = 0
  let deviceTotal = 0
  let botCorrect = 0
  let botTotal = 0
  let notedRows = 0
  for (const [index, vector] of vectors.entries()) {
    // A vector whose event was not stored counts as wrong on every score.
    const deviceType = stored.get(`${slug}-${index}`)?.deviceType
    if (vector.expectedBot !== undefined) {
      botTotal += 1
      botCorrect += deviceType !== undefined && (deviceType === "bot") === vector.expectedBot ? 1 : 0
    }
    // Rows with a note cannot be classified from the string alone, such as
    // iPads in desktop mode that send a Mac UA, so only their bot flag counts.
    if (vector.note !== undefined) {
      notedRows += 1
      continue
    }
    if (vector.expectedDeviceType !== undefined) {
      deviceTotal += 1
      deviceCorrect += deviceType === vector.expectedDeviceType ? 1 : 0
    }
  }

  const run = {
    device: { correct: deviceCorrect, total: deviceTotal },
    bot: { correct: botCorrect, total: botTotal },
    notedRows,
    accepted: countAccepted(deliveries),
    failures: describeFailures(deliveries, (index) => JSON.stringify(vectors[index]?.ua))
  }
  const scores = [
    run.device.total > 0 ? `device type ${percent(run.device)}` : undefined,
    run.bot.total > 0 ? `bot flag ${percent(run.bot)}` : undefined
  ].filter((part) => part !== undefined)
  console.log(
    `${file} through POST /v1/events: ${vectors.length} vectors, ${run.accepted} accepted, ` +
      `${scores.join(", ")}, noted rows skipped ${notedRows}, ${seconds(startedAt)}`
  )
  return run
}

describe("device type through POST /v1/events", () => {
  for (const file of ["ua_humans_top_user_agents.json", "ua_humans_intoli_user_agents.json"]) {
    it(`every human device right in ${file}`, async () => {
      const run = await runUserAgentFile(file)

      expect(run.failures).toBe("")
      expect(run.device.total).toBeGreaterThan(0)
      expect(run.device.correct).toBe(run.device.total)
      expect(run.bot.correct).toBe(run.bot.total)
    }, FILE_TIMEOUT_MS)
  }

  it("99% of crawler UAs stored as bots", async () => {
    const run = await runUserAgentFile("ua_bots_crawler_user_agents.json")

    expect(run.failures).toBe("")
    expect(run.bot.total).toBeGreaterThan(0)
    expect(ratio(run.bot)).toBeGreaterThanOrEqual(0.99)
  }, FILE_TIMEOUT_MS)

  for (const file of ["ua_device_uap_core.json", "ua_device_matomo.json"]) {
    it(`90% of device types right in ${file}`, async () => {
      const run = await runUserAgentFile(file)

      expect(run.failures).toBe("")
      expect(run.device.total).toBeGreaterThan(0)
      expect(ratio(run.device)).toBeGreaterThanOrEqual(0.9)
    }, FILE_TIMEOUT_MS)
  }
})

// ---------------------------------------------------------------------------
// Referrers

interface ReferrerVector {
  readonly referrerUrl: string
  readonly pageUrl: URL
  readonly internalDomains: ReadonlyArray<string>
  readonly expectedChannel: TrafficSourceKind
  readonly expectedSearchTerm: string | null
}

/**
 * Maps a vector's channel to our enum, as `test/traffic-source.test.ts`
 * does. The files already use our names except "paid", and the raw mediums
 * are mapped too in case a file keeps them.
 */
const toTrafficSource = (channel: string): TrafficSourceKind => {
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

const toReferrerVector = (row: unknown, file: string, index: number): ReferrerVector => {
  if (
    !isRecord(row) ||
    typeof row["referrer_url"] !== "string" ||
    typeof row["page_url"] !== "string" ||
    typeof row["expected_channel"] !== "string"
  ) {
    throw new Error(`${file}: vector ${index} lacks referrer_url, page_url or expected_channel`)
  }
  const pageUrl = URL.parse(row["page_url"])
  if (pageUrl === null) throw new Error(`${file}: vector ${index} has an invalid page_url ${row["page_url"]}`)
  const internal = row["internal_domains"]
  const searchTerm = row["expected_search_term"]
  return {
    referrerUrl: row["referrer_url"],
    pageUrl,
    internalDomains: Array.isArray(internal) ? internal.filter((item) => typeof item === "string") : [],
    expectedChannel: toTrafficSource(row["expected_channel"]),
    expectedSearchTerm: typeof searchTerm === "string" ? searchTerm : null
  }
}

/**
 * The property's domains for a vector. An event carries only the page's path
 * and query, so the page host that the unit test passes as an own domain
 * reaches the classifier only as one of the property's domains.
 */
const propertyDomains = (vector: ReferrerVector): ReadonlyArray<string> =>
  [...new Set([vector.pageUrl.hostname, ...vector.internalDomains])].sort()

/** Inserts a property with `domains` and an ingest key for it, and returns the key. */
const createProperty = async (slug: string, domains: ReadonlyArray<string>): Promise<string> => {
  const key = generateApiKey("ingest")
  await Effect.runPromise(withOwnerClient(database.url, (client) =>
    Effect.gen(function*() {
      const property = yield* ownerQuery(
        client,
        "INSERT INTO properties (tenant_id, slug, name, domains) VALUES ($1, $2, $3, $4) RETURNING id",
        [tenantId, slug, slug, [...domains]]
      )
      yield* ownerQuery(
        client,
        "INSERT INTO api_keys (tenant_id, property_id, scope, prefix, key_hash) VALUES ($1, $2, 'ingest', $3, $4)",
        [tenantId, property.rows[0]?.["id"], keyPrefix(key), hashApiKey(key)]
      )
    })))
  return key
}

interface ReferrerRun {
  readonly channel: Score
  readonly searchTerm: Score
  readonly channelMisses: string
  readonly failures: string
}

/**
 * Creates one property per distinct set of domains, sends one page view per
 * vector with its referrer and page path to that property, and scores the
 * stored traffic source and session search term.
 */
const runReferrerFile = async (file: string): Promise<ReferrerRun> => {
  const startedAt = performance.now()
  const vectors = loadRows(file).map((row, index) => toReferrerVector(row, file, index))
  const slug = file.replace(/\.json$/, "").replaceAll("_", "-")

  const keys = new Map<string, string>()
  for (const vector of vectors) {
    const domains = propertyDomains(vector)
    const domainsKey = domains.join(" ")
    if (!keys.has(domainsKey)) keys.set(domainsKey, await createProperty(`${slug}-${keys.size}`, domains))
  }

  const anonIds = vectors.map((_vector, index) => `${slug}-${index}`)
  const deliveries = await mapConcurrently(vectors, CONCURRENCY, (vector, index) =>
    postEvent(
      keys.get(propertyDomains(vector).join(" ")) ?? "",
      {
        eventId: `event-${slug}-${index}`,
        anonId: `${slug}-${index}`,
        eventType: "page_view",
        path: `${vector.pageUrl.pathname}${vector.pageUrl.search}`,
        referrer: vector.referrerUrl
      },
      { "user-agent": CHROME_DESKTOP }
    ))
  const stored = await readStoredEvents(anonIds)

  let channel = 0
  let searchTerm = 0
  const channelMisses: Array<string> = []
  for (const [index, vector] of vectors.entries()) {
    const event = stored.get(`${slug}-${index}`)
    if (event?.trafficSource === vector.expectedChannel) channel++
    else channelMisses.push(`${vector.referrerUrl}: expected ${vector.expectedChannel}, got ${event?.trafficSource}`)
    if (event !== undefined && event.searchTerm === vector.expectedSearchTerm) searchTerm++
  }

  const run = {
    channel: { correct: channel, total: vectors.length },
    searchTerm: { correct: searchTerm, total: vectors.length },
    channelMisses: channelMisses.join("\n"),
    failures: describeFailures(deliveries, (index) => vectors[index]?.referrerUrl ?? String(index))
  }
  console.log(
    `${file} through POST /v1/events: ${vectors.length} vectors, ${countAccepted(deliveries)} accepted, ` +
      `domain sets ${keys.size}, channel ${percent(run.channel)}, search term ${percent(run.searchTerm)}, ` +
      seconds(startedAt)
  )
  return run
}

describe("traffic source through POST /v1/events", () => {
  const files: ReadonlyArray<{ file: string; channelFloor: number }> = [
    { file: "referrer_snowplow_scala.json", channelFloor: 0.95 },
    { file: "referrer_matomo_lists.json", channelFloor: 0.9 }
  ]

  for (const { file, channelFloor } of files) {
    it(`${channelFloor * 100}% of channels right in ${file}`, async () => {
      const run = await runReferrerFile(file)

      expect(run.failures).toBe("")
      // The miss list is part of the failure message, so a drop shows which vectors changed.
      expect(ratio(run.channel), run.channelMisses).toBeGreaterThanOrEqual(channelFloor)
    }, FILE_TIMEOUT_MS)
  }
})
