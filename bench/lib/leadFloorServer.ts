/**
 * The floor for the lead benchmark: a bare `node:http` server that, for each
 * request, reads the body, parses it as JSON, and runs BEGIN, one INSERT of
 * one row and COMMIT through a `pg` pool, then responds with 201. It
 * validates nothing, checks no key and applies no consent rule. It listens
 * on 127.0.0.1 on a free port and prints `{"port": N}` on stdout once it
 * listens.
 *
 * Settings come from the environment: LEAD_FLOOR_PG_PORT, LEAD_FLOOR_PG_PASSWORD
 * (the embedded PostgreSQL's superuser), LEAD_FLOOR_POOL_SIZE and
 * LEAD_FLOOR_TABLE (created beforehand by the benchmark, see
 * `createLeadFloorTable` in leadFloor.ts).
 */
import * as Http from "node:http"
import pg from "pg"
import { leadFloorInsert } from "./leadFloor.ts"

const RESPONSE_BODY = JSON.stringify({ status: "created" })
const TENANT_ID = "00000000-0000-7000-8000-000000000001"
const PROPERTY_ID = "00000000-0000-7000-8000-000000000002"

const setting = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === "") throw new Error(`missing environment variable ${name}`)
  return value
}

const pool = new pg.Pool({
  host: "127.0.0.1",
  port: Number(setting("LEAD_FLOOR_PG_PORT")),
  user: "postgres",
  password: setting("LEAD_FLOOR_PG_PASSWORD"),
  database: "postgres",
  max: Number(setting("LEAD_FLOOR_POOL_SIZE")),
  application_name: "lead-floor"
})
// An idle connection that PostgreSQL closes (at its shutdown, say) must not end the process.
pool.on("error", (error) => process.stderr.write(`lead floor pool connection failed: ${error.message}\n`))
const table = setting("LEAD_FLOOR_TABLE")
// A named statement is prepared once per connection, as the service's client does.
const insert = { name: "lead_floor_insert", text: leadFloorInsert(table) }

const text = (value: unknown): string | null => typeof value === "string" && value !== "" ? value : null

/** Inserts the lead as one row in its own transaction and resolves after the commit. */
const store = async (lead: Record<string, unknown>) => {
  const email = (text(lead["email"]) ?? "").trim()
  const now = new Date()
  const express = lead["consent"] === "express"
  const client = await pool.connect()
  try {
    await client.query("BEGIN")
    await client.query({
      ...insert,
      values: [
        TENANT_ID,
        PROPERTY_ID,
        email.toLowerCase(),
        email,
        express ? "express" : "implied",
        express ? now : null,
        text(lead["consentText"]),
        text(lead["formName"]) ?? "",
        text(lead["locale"]),
        text(lead["anonId"]),
        text(lead["name"]),
        text(lead["company"]),
        text(lead["utm_source"]),
        text(lead["utm_medium"]),
        text(lead["utm_campaign"]),
        now,
        now
      ]
    })
    await client.query("COMMIT")
    client.release()
  } catch (error) {
    // A connection in an unknown transaction state must not go back to the pool.
    client.release(error instanceof Error ? error : new Error(String(error)))
    throw error
  }
}

const respond = (response: Http.ServerResponse, status: number, body: string) => {
  response.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) })
  response.end(body)
}

// The same keep-alive timeout as the service's server.
const server = Http.createServer({ keepAliveTimeout: 65_000 }, (request, response) => {
  const chunks: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.on("end", () => {
    let lead: unknown
    try {
      lead = JSON.parse(Buffer.concat(chunks).toString("utf8"))
    } catch {
      respond(response, 400, JSON.stringify({ error: { code: "invalid_json" } }))
      return
    }
    if (typeof lead !== "object" || lead === null || Array.isArray(lead)) {
      respond(response, 400, JSON.stringify({ error: { code: "invalid_json" } }))
      return
    }
    store(Object.fromEntries(Object.entries(lead))).then(
      () => respond(response, 201, RESPONSE_BODY),
      (error: unknown) => {
        process.stderr.write(`lead floor insert failed: ${error instanceof Error ? error.message : String(error)}\n`)
        respond(response, 500, JSON.stringify({ error: { code: "insert_failed" } }))
      }
    )
  })
})

server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  process.stdout.write(`${JSON.stringify({ port })}\n`)
})

const stop = () => server.close(() => void pool.end().finally(() => process.exit(0)))
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
