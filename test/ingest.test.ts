import { Effect, Exit, Redacted, Scope } from "effect"
import { createHmac, randomUUID } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startEmbeddedPostgres } from "../src/services/EmbeddedPostgres.ts"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { TEST_PEPPER } from "./support/appDatabase.ts"
import { embeddedPostgresPid, type ServiceProcess, startService } from "./support/serviceProcess.ts"
import { createTestDatabase, type TestDatabase } from "./support/testDatabase.ts"

const INGEST_KEY = "pk_ingest_test_key_0123456789abcdef"
const SITE = "https://www.acme.example"
const CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

const serviceEnv = (database: TestDatabase) => ({
  DATABASE_URL: Redacted.value(database.url).href,
  IP_HASH_PEPPER: TEST_PEPPER,
  INGEST_RATE_LIMIT_PER_MINUTE: "10000000",
  INGEST_API_KEY: INGEST_KEY,
  CORS_ALLOWED_ORIGINS: SITE
})

const send = (service: ServiceProcess, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${service.baseUrl}/v1/events`, {
    method: "POST",
    headers: { "content-type": "text/plain;charset=UTF-8", "user-agent": CHROME, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000)
  })

const pageView = (anonId: string, path: string, extra: Record<string, unknown> = {}) => ({
  key: INGEST_KEY,
  eventId: randomUUID(),
  anonId,
  eventType: "page_view",
  path,
  ...extra
})

const rows = (database: TestDatabase, text: string, values?: ReadonlyArray<unknown>) =>
  Effect.runPromise(withOwnerClient(database.url, (client) =>
    Effect.map(ownerQuery(client, text, values), (result) => result.rows)))

const eventsOf = (database: TestDatabase, anonId: string) =>
  rows(database, `
    SELECT e.event_type, e.path, e.referrer, e.is_entrance, e.is_exit, e.is_conversion, e.session_id,
           e.device_type, e.traffic_source, e.country_code, encode(e.ip_hash, 'hex') AS ip_hash,
           e.client_event_id, e.clock_skew_ms
    FROM events e JOIN visitors v ON v.id = e.visitor_id
    WHERE v.anon_id = $1 ORDER BY e."timestamp", e.id`, [anonId])

describe("POST /v1/events", () => {
  let database: TestDatabase
  let service: ServiceProcess

  beforeAll(async () => {
    database = await createTestDatabase()
    service = await startService({ env: serviceEnv(database) })
  })

  afterAll(async () => {
    await service?.stop()
  })

  it("stores a text/plain beacon and answers 202 after the commit", async () => {
    const anonId = randomUUID()

    const response = await send(service, pageView(anonId, "/pricing?utm_source=news&utm_medium=email&gclid=x"))

    expect(response.status).toBe(202)
    expect(await response.json()).toEqual({ accepted: 1, rejected: 0 })
    const stored = await eventsOf(database, anonId)
    expect(stored).toHaveLength(1)
    expect(stored[0]).toMatchObject({
      event_type: "page_view",
      path: "/pricing",
      device_type: "desktop",
      traffic_source: "paid_search",
      is_entrance: true,
      is_exit: true
    })
  })

  it("stores the client address only as its keyed hash", async () => {
    const anonId = randomUUID()

    await send(service, pageView(anonId, "/"), { "x-forwarded-for": "203.0.113.9", "fly-client-ip": "198.51.100.7" })

    const stored = await eventsOf(database, anonId)
    const expected = createHmac("sha256", TEST_PEPPER).update("127.0.0.1").digest("hex")
    expect(stored[0]?.["ip_hash"]).toBe(expected)
    expect(stored[0]?.["country_code"]).toBeNull()
    const raw = await rows(database, "SELECT count(*)::int AS n FROM events WHERE props::text LIKE '%127.0.0.1%'")
    expect(raw[0]?.["n"]).toBe(0)
  })

  it("refuses a body of 64 KiB plus one byte with 413", async () => {
    const filler = "x".repeat(64 * 1024 + 1 - JSON.stringify(pageView("a", "/", { referrer: "" })).length)
    const body = JSON.stringify(pageView("a", "/", { referrer: filler }))
    expect(Buffer.byteLength(body)).toBe(64 * 1024 + 1)

    const response = await send(service, body)

    expect(response.status).toBe(413)
    expect(await response.json()).toMatchObject({ error: { code: "payload_too_large" } })
  })

  it("stores the good events of a batch and counts the bad one", async () => {
    const anonId = randomUUID()
    const body = {
      key: INGEST_KEY,
      events: [
        pageView(anonId, "/"),
        { anonId, eventType: "page_view", path: "no-leading-slash" },
        pageView(anonId, "/pricing")
      ]
    }

    const response = await send(service, body)

    expect(response.status).toBe(202)
    expect(await response.json()).toMatchObject({
      accepted: 2,
      rejected: 1,
      rejections: [{ index: 1, fields: [{ path: "path", code: "invalid" }] }]
    })
    expect((await eventsOf(database, anonId)).map((row) => row["path"])).toEqual(["/", "/pricing"])
    const rejected = await rows(database, "SELECT reason, field FROM ingest_rejections WHERE field = 'path'")
    expect(rejected).toContainEqual({ reason: "invalid_event", field: "path" })
  })

  it("answers a lone invalid event with a localised 400 naming the field", async () => {
    const response = await send(service, { key: INGEST_KEY, anonId: "a", eventType: "page_view" }, {
      "accept-language": "fr-CA"
    })

    expect(response.status).toBe(400)
    expect(await response.json()).toEqual({
      error: {
        code: "invalid_event",
        message: "L’événement est invalide.",
        fields: [{ path: "path", code: "missing", message: "path est requis." }]
      }
    })
  })

  it.each([
    ["not JSON", "{nope", 400, "invalid_json"],
    ["an array", "[]", 400, "invalid_json"],
    ["51 events", JSON.stringify({ key: INGEST_KEY, events: Array.from({ length: 51 }, () => pageView("a", "/")) }), 400,
      "invalid_event_count"],
    ["no key", JSON.stringify({ anonId: "a", eventType: "page_view", path: "/" }), 401, "missing_key"]
  ])("refuses %s", async (_label, body, status, code) => {
    const response = await send(service, body)

    expect(response.status).toBe(status)
    expect(await response.json()).toMatchObject({ error: { code } })
  })

  it("stores a retried eventId once", async () => {
    const anonId = randomUUID()
    const beacon = pageView(anonId, "/")

    const first = await send(service, beacon)
    const retry = await send(service, beacon)

    expect(first.status).toBe(202)
    expect(retry.status).toBe(202)
    expect(await eventsOf(database, anonId)).toHaveLength(1)
  })

  it("records a client clock far from the receive time", async () => {
    const anonId = randomUUID()

    await send(service, pageView(anonId, "/", { timestamp: new Date(Date.now() - 3_600_000).toISOString() }))

    const stored = await eventsOf(database, anonId)
    expect(Number(stored[0]?.["clock_skew_ms"])).toBeLessThan(-3_500_000)
  })

  it.each([
    ["a foreign origin", "https://evil.example", 403],
    ["Origin null", "null", 403],
    ["the site's origin", SITE, 202]
  ])("answers a beacon from %s", async (_label, origin, status) => {
    const response = await send(service, pageView(randomUUID(), "/"), { origin })

    expect(response.status).toBe(status)
    if (status === 202) expect(response.headers.get("access-control-allow-origin")).toBe(SITE)
  })

  it("answers a preflight from the site's origin and refuses others", async () => {
    const preflight = (origin: string) =>
      fetch(`${service.baseUrl}/v1/events`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" }
      })

    const allowed = await preflight(SITE)
    const refused = await preflight("https://evil.example")

    expect(allowed.status).toBe(204)
    expect(allowed.headers.get("access-control-allow-origin")).toBe(SITE)
    expect(allowed.headers.get("access-control-allow-headers")).toContain("x-api-key")
    expect(refused.status).toBe(403)
  })
})

describe("ingest across restarts", () => {
  it("continues an open session after a restart and stores a retry once", async () => {
    const database = await createTestDatabase()
    const anonId = randomUUID()
    const first = await startService({ env: serviceEnv(database) })
    const landing = pageView(anonId, "/")
    expect((await send(first, landing)).status).toBe(202)
    await first.stop()

    const second = await startService({ env: serviceEnv(database) })
    const retry = await send(second, landing)
    const next = await send(second, pageView(anonId, "/pricing"))
    await second.stop()

    expect(retry.status).toBe(202)
    expect(next.status).toBe(202)
    const stored = await eventsOf(database, anonId)
    expect(stored.map((row) => [row["path"], row["is_entrance"], row["is_exit"]])).toEqual([
      ["/", true, false],
      ["/pricing", false, true]
    ])
    expect(new Set(stored.map((row) => row["session_id"])).size).toBe(1)
    expect(second.logs().find((entry) => entry["msg"] === "visitor actors reloaded")?.["actors"]).toBe(1)
  })

  it("loses no acknowledged event when killed with SIGKILL after a burst", async () => {
    const database = await createTestDatabase()
    const service = await startService({ env: serviceEnv(database) })
    const acknowledged: Array<string> = []
    let sent = 0
    // Twenty senders keep requests in flight; the kill lands once 150 have
    // been acknowledged, while others are still waiting for their commit.
    const sender = async () => {
      while (sent < 2_000 && service.child.exitCode === null && service.child.signalCode === null) {
        const index = sent++
        const beacon = pageView(`burst-${index % 40}`, `/p/${index}`)
        const status = await send(service, beacon).then((response) => response.status, () => 0)
        if (status === 202) acknowledged.push(beacon.eventId)
        if (acknowledged.length >= 150 && service.child.signalCode === null) service.child.kill("SIGKILL")
      }
    }
    await Promise.all(Array.from({ length: 20 }, sender))
    await service.exited

    expect(acknowledged.length).toBeGreaterThan(0)
    const stored = await rows(database, "SELECT client_event_id FROM events WHERE client_event_id = ANY($1)", [
      acknowledged
    ])
    expect(stored).toHaveLength(acknowledged.length)
  })
})

describe("ingest during a database outage", () => {
  it("answers 503, never 202, and recovers when the database returns", async () => {
    const service = await startService()
    const anonId = randomUUID()
    const ingestKey = Fs.readFileSync(Path.join(service.dataDir, "demo-ingest-key"), "utf8").trim()
    const beacon = (path: string) => ({ key: ingestKey, eventId: randomUUID(), anonId, eventType: "page_view", path })
    expect((await send(service, beacon("/before"))).status).toBe(202)
    const postgresPid = embeddedPostgresPid(service.dataDir) ?? 0
    const port = Number(Fs.readFileSync(Path.join(service.dataDir, "postgres", "postmaster.pid"), "utf8").split("\n")[3])
    const secrets: { superuserPassword: string } = JSON.parse(
      Fs.readFileSync(Path.join(service.dataDir, "secrets.json"), "utf8")
    )

    process.kill(postgresPid, "SIGINT")
    await waitUntil(() => Fs.existsSync(Path.join(service.dataDir, "postgres", "postmaster.pid")) === false, 15_000)
    const started = Date.now()
    const during = await send(service, beacon("/during"))
    const waited = Date.now() - started

    expect(during.status).toBe(503)
    expect(during.headers.get("retry-after")).not.toBeNull()
    expect(waited).toBeLessThan(8_000)
    expect((await fetch(`${service.baseUrl}/v1/healthz`)).status).toBe(503)

    const scope = Effect.runSync(Scope.make())
    await Effect.runPromise(startEmbeddedPostgres({
      dataDir: service.dataDir,
      port,
      superuserPassword: Redacted.make(secrets.superuserPassword)
    }).pipe(Scope.provide(scope)))
    try {
      let status = 0
      const deadline = Date.now() + 30_000
      while (status !== 202 && Date.now() < deadline) {
        status = (await send(service, beacon("/after"))).status
        if (status !== 202) await new Promise((resolve) => setTimeout(resolve, 250))
      }
      expect(status).toBe(202)
      expect((await fetch(`${service.baseUrl}/v1/healthz`)).status).toBe(200)
    } finally {
      await service.stop()
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
    expect(service.logs().some((entry) => entry["msg"] === "embedded PostgreSQL exited")).toBe(true)
  })
})

const waitUntil = async (condition: () => boolean, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  while (!condition() && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

describe("ingest rate limit", () => {
  it("answers 429 with Retry-After past the per-IP limit", async () => {
    const database = await createTestDatabase()
    const limited = await startService({ env: { ...serviceEnv(database), INGEST_RATE_LIMIT_PER_MINUTE: "3" } })
    try {
      const anonId = randomUUID()
      const statuses: Array<number> = []
      for (let index = 0; index < 3; index++) statuses.push((await send(limited, pageView(anonId, "/"))).status)
      const refused = await send(limited, pageView(anonId, "/"))

      expect(statuses).toEqual([202, 202, 202])
      expect(refused.status).toBe(429)
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0)
      expect(await refused.json()).toMatchObject({ error: { code: "rate_limited" } })
      expect(await eventsOf(database, anonId)).toHaveLength(3)
    } finally {
      await limited.stop()
    }
  })
})
