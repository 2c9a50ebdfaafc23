import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { MIGRATIONS_DIR, runMigrations } from "../src/services/Migrations.ts"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { embeddedPostgresPid, isAlive, type ServiceProcess, startService } from "./support/serviceProcess.ts"
import { createTestDatabase } from "./support/testDatabase.ts"

const migrationFiles = Fs.readdirSync(MIGRATIONS_DIR).filter((name) => name.endsWith(".sql")).sort()

describe("migrations", () => {
  it("apply every file once, then nothing on a second run", async () => {
    const database = await createTestDatabase()

    const first = await Effect.runPromise(runMigrations(database.url))
    const second = await Effect.runPromise(runMigrations(database.url))

    expect(first).toEqual(migrationFiles)
    expect(second).toEqual([])
    const recorded = await Effect.runPromise(withOwnerClient(database.url, (client) =>
      ownerQuery(client, "SELECT name FROM schema_migrations ORDER BY version")))
    expect(recorded.rows.map((row) => row["name"])).toEqual(migrationFiles)
  })

  it("roll back a failing file and leave it unrecorded", async () => {
    const database = await createTestDatabase()
    const folder = Fs.mkdtempSync(Path.join(Os.tmpdir(), "porchlight-migrations-"))
    Fs.writeFileSync(Path.join(folder, "0001_good.sql"), "CREATE TABLE good (id int);")
    Fs.writeFileSync(Path.join(folder, "0002_bad.sql"), "CREATE TABLE half_done (id int);\nSELECT 1 / 0;")

    const outcome = await Effect.runPromise(Effect.flip(runMigrations(database.url, folder)))

    expect(outcome.message).toContain("0002_bad.sql")
    expect(outcome.message).toContain("division by zero")
    const tables = await Effect.runPromise(withOwnerClient(database.url, (client) =>
      ownerQuery(client, "SELECT to_regclass('good') AS good, to_regclass('half_done') AS half_done")))
    expect(tables.rows[0]?.["good"]).toBe("good")
    expect(tables.rows[0]?.["half_done"]).toBeNull()
    const recorded = await Effect.runPromise(withOwnerClient(database.url, (client) =>
      ownerQuery(client, "SELECT name FROM schema_migrations")))
    expect(recorded.rows.map((row) => row["name"])).toEqual(["0001_good.sql"])
  })

  it("create the data model with tenant_id on every data table", async () => {
    const database = await createTestDatabase()
    await Effect.runPromise(runMigrations(database.url))

    const result = await Effect.runPromise(withOwnerClient(database.url, (client) =>
      ownerQuery(client, `
        SELECT c.relname AS table_name,
               bool_or(a.attname = 'tenant_id') AS has_tenant
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p') AND c.relname NOT IN ('schema_migrations', 'job_runs')
        GROUP BY c.relname`)))

    const withoutTenant = result.rows.filter((row) => row["has_tenant"] !== true).map((row) => row["table_name"])
    expect(withoutTenant).toEqual([])
    const tables = result.rows.map((row) => String(row["table_name"]))
    for (const table of ["tenants", "properties", "api_keys", "visitors", "sessions", "events", "leads",
      "lead_identities", "form_submissions", "consent_events", "daily_metric_rollups", "daily_ingest_rollups",
      "ingest_rejections", "users", "auth_sessions"]) {
      expect(tables).toContain(table)
    }
  })
})

describe("service on the embedded database", () => {
  let service: ServiceProcess

  beforeAll(async () => {
    service = await startService()
  })

  afterAll(async () => {
    await service?.stop()
  })

  it("answers healthz with 200 and status ok", async () => {
    const response = await fetch(`${service.baseUrl}/v1/healthz`)

    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ status: "ok" })
  })

  it("logs its start with the address and database kind", () => {
    const started = service.logs().find((entry) => entry["msg"] === "service started")

    expect(started?.["databaseKind"]).toBe("embedded")
    expect(started?.["address"]).toBe(`http://127.0.0.1:${service.port}`)
  })

  it("prints the generated keys once, outside the JSON log", () => {
    const keyLines = service.lines.filter((line) => /(admin|ingest) key:\s+(sk|pk)_/.test(line))
    const logLines = service.lines.filter((line) => line.startsWith("{"))

    expect(keyLines).toHaveLength(2)
    expect(logLines.some((line) => /\b(sk|pk)_[A-Za-z0-9_-]{20,}/.test(line))).toBe(false)
  })

  it("answers an unknown path with a 404 envelope in French for fr-CA", async () => {
    const response = await fetch(`${service.baseUrl}/v1/nothing-here`, {
      headers: { "accept-language": "fr-CA,fr;q=0.9,en;q=0.8" }
    })

    expect(response.status).toBe(404)
    expect(response.headers.get("content-language")).toBe("fr")
    expect(await response.json()).toEqual({
      error: { code: "not_found", message: "Aucune ressource n’existe à /v1/nothing-here." }
    })
  })

  it("answers in English by default and lets ?lang= override the header", async () => {
    const english = await fetch(`${service.baseUrl}/v1/nothing-here`)
    const french = await fetch(`${service.baseUrl}/v1/nothing-here?lang=fr`, {
      headers: { "accept-language": "en-CA" }
    })

    expect(await english.json()).toMatchObject({ error: { message: "No resource exists at /v1/nothing-here." } })
    expect(await french.json()).toMatchObject({ error: { message: "Aucune ressource n’existe à /v1/nothing-here." } })
  })

  it("answers a wrong method with a 405 envelope and an Allow header", async () => {
    const response = await fetch(`${service.baseUrl}/v1/healthz`, { method: "DELETE" })

    expect(response.status).toBe(405)
    expect(response.headers.get("allow")).toBe("GET")
    expect(await response.json()).toMatchObject({
      error: { code: "method_not_allowed", message: expect.stringContaining("DELETE") }
    })
  })

  it("answers healthz with 503 once the database stops", async () => {
    const pid = embeddedPostgresPid(service.dataDir)
    expect(pid).toBeDefined()

    process.kill(pid ?? 0, "SIGINT")
    const status = await pollStatus(`${service.baseUrl}/v1/healthz`, 503, 15_000)

    expect(status.status).toBe(503)
    expect(status.body).toMatchObject({ error: { code: "database_unavailable" } })
    expect(status.retryAfter).toBe("5")
  })
})

describe("service lifecycle", () => {
  it("exits 0 on SIGTERM and leaves no PostgreSQL running", async () => {
    const service = await startService()
    const postgresPid = embeddedPostgresPid(service.dataDir) ?? 0
    expect(isAlive(postgresPid)).toBe(true)

    const exit = await service.stop("SIGTERM")

    expect(exit).toEqual({ code: 0, signal: null })
    expect(isAlive(postgresPid)).toBe(false)
    const messages = service.logs().map((entry) => entry["msg"])
    expect(messages).toContain("service stopping")
    expect(messages.at(-1)).toBe("service stopped")
  })

  it("exits 0 on SIGINT as well", async () => {
    const service = await startService()

    const exit = await service.stop("SIGINT")

    expect(exit).toEqual({ code: 0, signal: null })
  })

  it("keeps its data across a restart and applies no migration twice", async () => {
    const first = await startService()
    await first.stop()

    const second = await startService({ dataDir: first.dataDir })
    await second.stop()

    const ready = second.logs().find((entry) => entry["msg"] === "database ready")
    expect(ready?.["migrationsApplied"]).toBe(0)
    expect(second.logs().some((entry) => entry["service"] === "bootstrap")).toBe(false)
  })

  it("stops PostgreSQL when the service is killed with SIGKILL", async () => {
    const service = await startService()
    const postgresPid = embeddedPostgresPid(service.dataDir) ?? 0

    await service.stop("SIGKILL")

    await waitUntil(() => !isAlive(postgresPid), 10_000)
    expect(isAlive(postgresPid)).toBe(false)
  })
})

describe("configuration", () => {
  it.each([
    ["PORT", "abc", "PORT must be an integer port from 1 to 65535"],
    ["PORT", "70000", "PORT must be an integer port from 1 to 65535"],
    ["DATABASE_URL", "mysql://localhost/db", "DATABASE_URL must be a postgres:// or postgresql:// URL"],
    ["LOG_LEVEL", "loud", "LOG_LEVEL must be one of: fatal, error, warn, info, debug, trace"],
    ["TRUST_PROXY", "everyone", "TRUST_PROXY must be one of: none, fly"],
    ["CORS_ALLOWED_ORIGINS", "example.com", "CORS_ALLOWED_ORIGINS must be a comma-separated list of origins"],
    ["ADMIN_API_KEY", "short", "ADMIN_API_KEY must be 24 to 128 characters"]
  ])("stops the start when %s=%s", async (variable, value, expected) => {
    const service = await startService({ env: { [variable]: value }, expectExit: true })

    const exit = await service.exited
    expect(exit.code).toBe(1)
    const fatal = service.logs().filter((entry) => entry["level"] === "fatal")
    expect(fatal).toHaveLength(1)
    expect(String(fatal[0]?.["msg"])).toContain(expected)
  })

  it("requires IP_HASH_PEPPER when DATABASE_URL is set", async () => {
    const service = await startService({
      env: { DATABASE_URL: "postgres://user:pw-Xk29zQ@127.0.0.1:1/porchlight" },
      expectExit: true
    })

    expect((await service.exited).code).toBe(1)
    const fatal = service.logs().find((entry) => entry["level"] === "fatal")
    expect(String(fatal?.["msg"])).toContain("IP_HASH_PEPPER")
    expect(service.lines.join("\n")).not.toContain("pw-Xk29zQ")
  })

  it("stops with a clear error when the embedded port is taken", async () => {
    const blocker = Net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
    const address = blocker.address()
    const takenPort = typeof address === "object" && address !== null ? address.port : 0

    const service = await startService({ env: { EMBEDDED_PG_PORT: String(takenPort) }, expectExit: true })
    blocker.close()

    expect((await service.exited).code).toBe(1)
    expect(service.lines.join("\n")).toContain(`port ${takenPort} on 127.0.0.1 is already in use`)
  })

  it("stops with a clear error when another instance holds DATA_DIR", async () => {
    const running = await startService()

    const second = await startService({ dataDir: running.dataDir, expectExit: true })
    await running.stop()

    expect((await second.exited).code).toBe(1)
    expect(second.lines.join("\n")).toContain("is in use by another PostgreSQL")
  })
})

const pollStatus = async (url: string, expectedStatus: number, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const response = await fetch(url)
    if (response.status === expectedStatus || Date.now() > deadline) {
      return { status: response.status, body: await response.json(), retryAfter: response.headers.get("retry-after") }
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

const waitUntil = async (condition: () => boolean, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  while (!condition() && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
