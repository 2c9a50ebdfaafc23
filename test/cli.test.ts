/**
 * The operator CLI (`src/cli.ts`) run as a child process, the way an
 * operator runs it, against a fresh database on the test cluster and, in the
 * last suite, against the embedded PostgreSQL of a running service.
 */
import { Effect, Redacted } from "effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { hashApiKey } from "../src/services/ApiKeyFormat.ts"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { TEST_PEPPER } from "./support/appDatabase.ts"
import { freePort } from "./support/ports.ts"
import { makeDataDir, type ServiceProcess, startService } from "./support/serviceProcess.ts"
import { createTestDatabase, type TestDatabase } from "./support/testDatabase.ts"

const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url))

interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the CLI with only the variables in `env` (plus PATH and HOME) and collects its output. */
const runCli = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>) =>
  new Promise<CliResult>((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: process.env["HOME"] ?? "/tmp", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8")
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    child.once("error", reject)
    child.once("close", (code) => resolve({ code, stdout, stderr }))
  })

/** Parses stdout as JSON and returns the object under `field`. */
const jsonField = (result: CliResult, field: string): Record<string, unknown> => {
  const parsed: unknown = JSON.parse(result.stdout)
  if (typeof parsed !== "object" || parsed === null || !(field in parsed)) {
    throw new Error(`stdout has no "${field}": ${result.stdout}`)
  }
  const value: unknown = Object.fromEntries(Object.entries(parsed))[field]
  if (typeof value !== "object" || value === null) throw new Error(`"${field}" is not an object: ${result.stdout}`)
  return Object.fromEntries(Object.entries(value))
}

const text = (value: unknown): string => {
  if (typeof value !== "string") throw new Error(`expected a string, got ${JSON.stringify(value)}`)
  return value
}

describe("cli usage", () => {
  const env = { DATABASE_URL: "postgres://nobody@127.0.0.1:1/none", IP_HASH_PEPPER: TEST_PEPPER }

  it("--help lists the commands", async () => {
    const result = await runCli(["--help"], env)

    expect(result.code).toBe(0)
    expect(result.stdout).toContain("tenant")
    expect(result.stdout).toContain("property")
    expect(result.stdout).toContain("key")
  })

  it("command --help lists its options", async () => {
    const result = await runCli(["property", "create", "--help"], env)

    expect(result.code).toBe(0)
    for (const option of ["--tenant", "--slug", "--name", "--domains", "--origins", "--timezone", "--thank-you-url"]) {
      expect(result.stdout).toContain(option)
    }
  })

  it("unknown command exits 2", async () => {
    const result = await runCli(["frobnicate"], env)

    expect(result.code).toBe(2)
    expect(result.stderr).toContain("unknown command \"frobnicate\"")
    expect(result.stderr).toContain("--help")
    expect(result.stdout).toBe("")
  })

  it("unknown option exits 2", async () => {
    const result = await runCli(["tenant", "list", "--colour"], env)

    expect(result.code).toBe(2)
    expect(result.stderr).toContain("--colour")
  })

  it("missing required option exits 2", async () => {
    const result = await runCli(["tenant", "create"], env)

    expect(result.code).toBe(2)
    expect(result.stderr).toContain("missing required option --name")
    expect(result.stderr).toContain("tenant create --help")
  })

  it("unreachable database exits 1", async () => {
    const closedPort = await freePort()
    const result = await runCli(["tenant", "list"], {
      DATABASE_URL: `postgres://nobody@127.0.0.1:${closedPort}/none`,
      IP_HASH_PEPPER: TEST_PEPPER
    })

    expect(result.code).toBe(1)
    expect(result.stderr).toContain("could not connect to PostgreSQL")
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(result.stdout).toBe("")
  })
})

describe("cli against a database", () => {
  let database: TestDatabase
  let env: Record<string, string>
  let tenantId = ""
  let ingestKey = ""
  let ingestPrefix = ""
  let adminKeyId = ""

  const ownerRows = (sql: string, values: ReadonlyArray<unknown>) =>
    Effect.runPromise(withOwnerClient(database.url, (client) => ownerQuery(client, sql, values))).then((result) =>
      result.rows.map((row: Record<string, unknown>) => row)
    )

  beforeAll(async () => {
    database = await createTestDatabase()
    env = { DATABASE_URL: Redacted.value(database.url).href, IP_HASH_PEPPER: TEST_PEPPER }
  })

  it("tenant create prints JSON", async () => {
    const result = await runCli(["tenant", "create", "--name", "Acme Inc", "--json"], env)

    expect(result.code).toBe(0)
    const tenant = jsonField(result, "tenant")
    expect(tenant["name"]).toBe("Acme Inc")
    tenantId = text(tenant["id"])
    expect(tenantId).toMatch(/^[0-9a-f-]{36}$/)
  })

  it("tenant list shows the tenant", async () => {
    const result = await runCli(["tenant", "list"], env)

    expect(result.code).toBe(0)
    expect(result.stdout).toContain(tenantId)
    expect(result.stdout).toContain("Acme Inc")
  })

  it("property create normalises domains", async () => {
    const result = await runCli([
      "property", "create", "--tenant", tenantId, "--slug", "www", "--name", "Marketing site",
      "--domains", "Example.com, www.example.com", "--timezone", "America/Toronto",
      "--thank-you-url", "https://example.com/thanks", "--json"
    ], env)

    expect(result.code).toBe(0)
    const property = jsonField(result, "property")
    expect(property["slug"]).toBe("www")
    expect(property["domains"]).toEqual(["example.com", "www.example.com"])
    expect(property["allowedOrigins"]).toEqual(["https://example.com", "https://www.example.com"])
    expect(property["timezone"]).toBe("America/Toronto")
    expect(property["thankYouUrl"]).toBe("https://example.com/thanks")
  })

  it("property create stores explicit origins", async () => {
    const result = await runCli([
      "property", "create", "--tenant", tenantId, "--slug", "app", "--name", "App",
      "--domains", "app.example.com", "--origins", "https://app.example.com,http://localhost:3000", "--json"
    ], env)

    expect(result.code).toBe(0)
    const property = jsonField(result, "property")
    expect(property["allowedOrigins"]).toEqual(["https://app.example.com", "http://localhost:3000"])
    expect(property["timezone"]).toBe("UTC")
  })

  it("taken slug exits 1", async () => {
    const result = await runCli([
      "property", "create", "--tenant", tenantId, "--slug", "www", "--name", "Second", "--domains", "example.org"
    ], env)

    expect(result.code).toBe(1)
    expect(result.stderr).toContain("slug \"www\" is already used")
    expect(result.stderr).not.toMatch(/^\s+at /m)
    expect(result.stdout).toBe("")
  })

  it("invalid time zone exits 2", async () => {
    const result = await runCli([
      "property", "create", "--tenant", tenantId, "--slug", "tz", "--name", "Zone", "--domains", "example.net",
      "--timezone", "Mars/Olympus_Mons"
    ], env)

    expect(result.code).toBe(2)
    expect(result.stderr).toContain("--timezone")
    expect(result.stderr).toContain("Mars/Olympus_Mons")
  })

  it("foreign thank-you URL exits 2", async () => {
    const result = await runCli([
      "property", "create", "--tenant", tenantId, "--slug", "away", "--name", "Away", "--domains", "example.net",
      "--thank-you-url", "https://elsewhere.example/thanks"
    ], env)

    expect(result.code).toBe(2)
    expect(result.stderr).toContain("--thank-you-url")
  })

  it("unknown tenant exits 1", async () => {
    const unknownTenant = "00000000-0000-7000-8000-000000000000"
    const result = await runCli([
      "property", "create", "--tenant", unknownTenant, "--slug", "www", "--name", "X", "--domains", "example.com"
    ], env)

    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`tenant ${unknownTenant} not found`)
  })

  it("property list --json parses", async () => {
    const result = await runCli(["property", "list", "--tenant", tenantId, "--json"], env)

    expect(result.code).toBe(0)
    const parsed: unknown = JSON.parse(result.stdout)
    expect(parsed).toMatchObject({ properties: [{ slug: "www" }, { slug: "app" }] })
  })

  it("ingest key requires --property", async () => {
    const result = await runCli(["key", "create", "--tenant", tenantId, "--scope", "ingest"], env)

    expect(result.code).toBe(2)
    expect(result.stderr).toContain("--property")
  })

  it("key create prints the ingest key once", async () => {
    const result = await runCli([
      "key", "create", "--tenant", tenantId, "--scope", "ingest", "--property", "www", "--name", "www tracker"
    ], env)

    expect(result.code).toBe(0)
    const key = result.stdout.split("\n").find((line) => /^pk_[A-Za-z0-9_-]{43}$/.test(line))
    expect(key).toBeDefined()
    ingestKey = key ?? ""
    ingestPrefix = ingestKey.slice(0, 12)
    expect(result.stdout).toContain("shown only this once")
    expect(result.stdout).toContain("only its SHA-256 hash is stored")
  })

  it("database stores hash, not key", async () => {
    const rows = await ownerRows("SELECT key_hash, scope::text AS scope FROM api_keys WHERE prefix = $1", [ingestPrefix])

    expect(rows).toHaveLength(1)
    const storedHash: unknown = rows[0]?.["key_hash"]
    expect(storedHash).toEqual(hashApiKey(ingestKey))
    expect(rows[0]?.["scope"]).toBe("ingest")
    const leaks = await ownerRows(
      "SELECT count(*)::int AS n FROM api_keys k WHERE strpos(row_to_json(k)::text, $1) > 0",
      [ingestKey]
    )
    expect(leaks[0]?.["n"]).toBe(0)
  })

  it("key list omits the hash", async () => {
    const table = await runCli(["key", "list", "--tenant", tenantId], env)
    const json = await runCli(["key", "list", "--tenant", tenantId, "--json"], env)

    expect(table.code).toBe(0)
    const line = table.stdout.split("\n").find((row) => row.startsWith(ingestPrefix))
    expect(line).toMatch(/^pk_\S+\s+ingest\s+www\s+www tracker\s+\S+Z\s+-\s+-$/)
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout)).toMatchObject({
      apiKeys: [{ prefix: ingestPrefix, scope: "ingest", propertySlug: "www", name: "www tracker", revokedAt: null }]
    })
    expect(json.stdout).not.toContain(ingestKey)
    expect(json.stdout.toLowerCase()).not.toContain("hash")
  })

  it("admin key create --json parses", async () => {
    const result = await runCli(["key", "create", "--tenant", tenantId, "--scope", "admin", "--json"], env)

    expect(result.code).toBe(0)
    const parsed: unknown = JSON.parse(result.stdout)
    expect(parsed).toMatchObject({ apiKey: { scope: "admin", propertySlug: null }, key: expect.stringMatching(/^sk_/) })
    expect(result.stderr).toContain("shown only this once")
    adminKeyId = text(jsonField(result, "apiKey")["id"])
  })

  it("key revoke marks the key revoked", async () => {
    const result = await runCli(["key", "revoke", ingestPrefix], env)

    expect(result.code).toBe(0)
    expect(result.stdout).toContain(`Revoked ingest key ${ingestPrefix}`)
    const rows = await ownerRows("SELECT revoked_at FROM api_keys WHERE prefix = $1", [ingestPrefix])
    expect(rows[0]?.["revoked_at"]).toBeInstanceOf(Date)
  })

  it("second revoke reports already revoked", async () => {
    const result = await runCli(["key", "revoke", ingestPrefix], env)

    expect(result.code).toBe(0)
    expect(result.stdout).toContain("already revoked")
  })

  it("key revoke by id", async () => {
    const result = await runCli(["key", "revoke", adminKeyId, "--json"], env)

    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ apiKey: { id: adminKeyId, scope: "admin" }, alreadyRevoked: false })
    expect(jsonField(result, "apiKey")["revokedAt"]).toEqual(expect.any(String))
  })

  it("unknown key prefix exits 1", async () => {
    const result = await runCli(["key", "revoke", "pk_000000000"], env)

    expect(result.code).toBe(1)
    expect(result.stderr).toContain("API key with prefix pk_000000000 not found")
  })

  it("tenant list --json parses", async () => {
    const result = await runCli(["tenant", "list", "--json"], env)

    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ tenants: [{ id: tenantId, name: "Acme Inc", properties: 2 }] })
  })
})

describe("cli with the embedded database", () => {
  const dataDir = makeDataDir()
  let service: ServiceProcess | undefined

  beforeAll(async () => {
    service = await startService({ dataDir })
  })

  afterAll(async () => {
    await service?.stop()
    Fs.rmSync(dataDir, { recursive: true, force: true })
  })

  it("tenant list uses running service's database", async () => {
    const result = await runCli(["tenant", "list"], { DATA_DIR: dataDir })

    expect(result.code).toBe(0)
    expect(result.stdout).toContain("Default tenant")
  })
})
