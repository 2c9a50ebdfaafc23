/**
 * The naive peer for the ingest benchmark: the service a developer might
 * write in an afternoon. Fastify 5, `pg` with a pool of 10, and for each
 * event one INSERT plus one session upsert, each its own transaction, before
 * the 202. No validation beyond JSON parsing, no enrichment, no batching.
 *
 * It reads DATABASE_URL (the benchmark's PostgreSQL, on 127.0.0.1), creates
 * its two tables there, listens on 127.0.0.1 on a free port and prints
 * `{"port": N}` once it listens.
 */
import Fastify from "fastify"
import pg from "pg"

const databaseUrl = process.env["DATABASE_URL"]
if (databaseUrl === undefined || !new URL(databaseUrl).hostname.startsWith("127.")) {
  process.stderr.write("naiveServer: DATABASE_URL must point at 127.0.0.1\n")
  process.exit(2)
}

const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 })
await pool.query(`
  CREATE TABLE IF NOT EXISTS naive_sessions (
    anon_id text PRIMARY KEY,
    started_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    page_views integer NOT NULL,
    events integer NOT NULL
  );
  CREATE TABLE IF NOT EXISTS naive_events (
    id bigserial PRIMARY KEY,
    client_event_id text,
    anon_id text NOT NULL,
    event_type text NOT NULL,
    path text NOT NULL,
    referrer text,
    user_agent text,
    client_ip text,
    received_at timestamptz NOT NULL,
    props jsonb NOT NULL
  );
  CREATE INDEX IF NOT EXISTS naive_events_time_idx ON naive_events (received_at);`)

interface Body {
  readonly events?: ReadonlyArray<Record<string, unknown>>
}

const app = Fastify({ logger: false, keepAliveTimeout: 65_000 })
// sendBeacon posts text/plain; the body is JSON all the same.
app.addContentTypeParser("text/plain", { parseAs: "string" }, (_request, body, done) => {
  try {
    done(null, JSON.parse(String(body)))
  } catch (error) {
    done(error as Error, undefined)
  }
})

app.post("/v1/events", async (request, reply) => {
  const events = (request.body as Body).events ?? []
  const now = new Date()
  for (const event of events) {
    const anonId = String(event["anonId"])
    const isPageView = event["eventType"] === "page_view" ? 1 : 0
    await pool.query(
      `INSERT INTO naive_sessions (anon_id, started_at, last_seen_at, page_views, events) VALUES ($1, $2, $2, $3, 1)
       ON CONFLICT (anon_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at,
         page_views = naive_sessions.page_views + EXCLUDED.page_views, events = naive_sessions.events + 1`,
      [anonId, now, isPageView]
    )
    await pool.query(
      `INSERT INTO naive_events (client_event_id, anon_id, event_type, path, referrer, user_agent, client_ip, received_at, props)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [event["eventId"], anonId, event["eventType"], event["path"], event["referrer"] ?? null,
        request.headers["user-agent"] ?? null, request.headers["fly-client-ip"] ?? null, now,
        JSON.stringify(event["props"] ?? {})]
    )
  }
  return reply.code(202).send({ accepted: events.length, rejected: 0 })
})

await app.listen({ host: "127.0.0.1", port: 0 })
const address = app.server.address()
process.stdout.write(`${JSON.stringify({ port: typeof address === "object" && address !== null ? address.port : 0 })}\n`)

const stop = () => {
  void app.close().then(() => pool.end()).then(() => process.exit(0))
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
