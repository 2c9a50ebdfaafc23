/**
 * Child process of the heap benchmark, the measured side. It builds the
 * service's own layers for the ingest state (configuration, database, SQL
 * pool, `Enrichment`, `VisitorActors`) against the benchmark's PostgreSQL.
 * Then it sends visitors' requests through the steps of `POST /v1/events`
 * up to the actors: `JSON.parse` of the tracker's body, `validateEvent`,
 * `Enrichment.enrich`, and `VisitorActors.track` with the key that
 * `IngestPipeline` builds. The event writer does not run, because it keeps
 * nothing per visitor. The child reads the settled heap before and after,
 * and writes each visitor's final state as one JSON line for the floor
 * child.
 *
 * Usage: node --expose-gc bench/lib/heapActors.ts --visitors N --seed S --result FILE --dump FILE
 *   [--heap-snapshot PREFIX], with DATABASE_URL and IP_HASH_PEPPER set.
 */
import { Effect, Layer, ManagedRuntime, References } from "effect"
import { randomUUID } from "node:crypto"
import * as Fs from "node:fs"
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import * as V8 from "node:v8"
import { type EventFields, validateEvent } from "../../src/http/EventSchema.ts"
import { AppConfig } from "../../src/services/AppConfig.ts"
import { Database, SqlLive } from "../../src/services/Database.ts"
import { Enrichment, type EnrichmentShape } from "../../src/services/Enrichment.ts"
import { TenantDb } from "../../src/services/TenantDb.ts"
import type { EnrichedEvent, TrackEvents } from "../../src/streams/IngestMessages.ts"
import { VisitorActors, type VisitorActorsShape } from "../../src/streams/VisitorActors.ts"
import { applyEvents, initialState, type VisitorState } from "../../src/streams/VisitorSession.ts"
import { type Corpus, loadCorpus, type PlannedRequest, VisitorStream } from "./corpus.ts"
import { flattenState, settledHeap, stringCharactersOf, type WorkloadFigures, writeChildResult } from "./heapProbe.ts"

const TESTDATA_DIR = new URL("../../../shared/testdata/", import.meta.url)
/** Ingest key written into each body. The HTTP layer, which would resolve it, does not run here. */
const INGEST_KEY = "pk_bench_heap_0123456789abcdef"
const SITE_ORIGIN = "https://www.example.com"
const PROPERTY_DOMAINS = ["www.example.com"]
/** Visitors sent through the pure steps before the first reading, so that compiled code and caches are in place. */
const WARM_UP_VISITORS = 2_000
/** Bytes of dump lines gathered before one write to the file. */
const DUMP_CHUNK_BYTES = 256 * 1024

const { values: options } = parseArgs({
  options: {
    visitors: { type: "string" },
    seed: { type: "string" },
    result: { type: "string" },
    dump: { type: "string" },
    "heap-snapshot": { type: "string" }
  }
})
const visitors = Number(options.visitors)
const seed = Number(options.seed)
if (!Number.isInteger(visitors) || visitors <= 0 || !Number.isInteger(seed)) {
  throw new Error(`invalid --visitors ${options.visitors} or --seed ${options.seed}: expected integers`)
}
if (options.result === undefined || options.dump === undefined) throw new Error("missing --result FILE or --dump FILE")
const resultFile = options.result
const dumpFile = options.dump
/** When set, heap snapshots are written to PREFIX-before.heapsnapshot and PREFIX-after.heapsnapshot. */
const snapshotPrefix = options["heap-snapshot"]

const ConfigLive = AppConfig.layer
const DatabaseLive = Database.layer.pipe(Layer.provide(ConfigLive))
const SqlPool = SqlLive.pipe(Layer.provide([DatabaseLive, ConfigLive]))
const IngestState = Layer.mergeAll(
  VisitorActors.layer.pipe(Layer.provide(TenantDb.layer)),
  Enrichment.layer
).pipe(
  Layer.provide([ConfigLive, DatabaseLive, SqlPool, Layer.succeed(References.MinimumLogLevel, "Warn")])
)

/** The ids that the API key cache would return: the same strings for every request of the property. */
interface Ids {
  readonly tenantId: string
  readonly propertyId: string
}

/** Parses, validates and enriches one request's events and groups them by visitor, as `postEvents` does. */
const enrichRequest = (request: PlannedRequest, enrichment: EnrichmentShape) => {
  const body: unknown = JSON.parse(request.body)
  const rawEvents = typeof body === "object" && body !== null && "events" in body && Array.isArray(body.events)
    ? body.events
    : []
  const accepted: Array<EventFields> = []
  for (const raw of rawEvents) {
    const result = validateEvent(raw)
    if (!result.ok) throw new Error(`the corpus produced an invalid event: ${JSON.stringify(result.fields)}`)
    accepted.push(result.event)
  }
  const facts = {
    ip: request.clientIp,
    userAgent: request.userAgent,
    clientHints: { "user-agent": request.userAgent, "content-type": "text/plain;charset=UTF-8", origin: SITE_ORIGIN },
    receivedAt: Date.now(),
    propertyDomains: PROPERTY_DOMAINS
  }
  const byVisitor = new Map<string, Array<EnrichedEvent>>()
  for (const event of accepted) {
    const group = byVisitor.get(event.anonId) ?? []
    group.push(enrichment.enrich(event, facts))
    byVisitor.set(event.anonId, group)
  }
  return byVisitor
}

/** Returns the anonId of a one-event request. */
const anonIdOf = (request: PlannedRequest): string => {
  const match = /"anonId":"([^"]+)"/.exec(request.body)
  if (match?.[1] === undefined) throw new Error("missing anonId in a planned request body")
  return match[1]
}

/**
 * Classifies every user agent of the corpus once, so the classifier's
 * bounded cache is full before the first reading, and runs a separate set of
 * visitors through the pure steps to compile them.
 */
const warmUp = (corpus: Corpus, enrichment: EnrichmentShape, ids: Ids) => {
  for (const userAgent of [...corpus.humanAgents, ...corpus.botAgents]) {
    const body = JSON.stringify({ key: INGEST_KEY, events: [{ anonId: randomUUID(), eventType: "page_view", path: "/" }] })
    // A documentation address (RFC 5737): it is only looked up in the country database.
    enrichRequest({ body, userAgent, clientIp: "203.0.113.7", eventIds: [] }, enrichment)
  }
  const stream = new VisitorStream(corpus, INGEST_KEY, seed + 1_000_003, 1)
  const states = new Map<string, VisitorState>()
  while (states.size <= WARM_UP_VISITORS) {
    for (const [anonId, events] of enrichRequest(stream.nextRequest(1), enrichment)) {
      const key = { tenantId: ids.tenantId, propertyId: ids.propertyId, anonId }
      const state = states.get(anonId) ?? initialState(key, Date.now())
      states.set(anonId, applyEvents(state, { key, events }, randomUUID).state)
    }
  }
}

/** Appends visitors' final states to the dump file, one JSON line each, and sums the workload figures. */
class DumpWriter {
  private readonly fd: number
  private chunk = ""
  private figures = {
    requests: 0,
    events: 0,
    pageViews: 0,
    recentClientEventIds: 0,
    visitorsWithReferrer: 0,
    visitorsWithCampaign: 0,
    stringCharacters: 0
  }

  constructor(file: string) {
    this.fd = Fs.openSync(file, "w")
  }

  countRequest(events: number) {
    this.figures.requests++
    this.figures.events += events
  }

  add(state: VisitorState) {
    const record = flattenState(state)
    this.figures.pageViews += record.pageViews
    this.figures.recentClientEventIds += record.recentClientEventIds.length
    if (record.referrer !== null) this.figures.visitorsWithReferrer++
    if (record.utmCampaign !== null) this.figures.visitorsWithCampaign++
    this.figures.stringCharacters += stringCharactersOf(record)
    this.chunk += `${JSON.stringify(record)}\n`
    if (this.chunk.length >= DUMP_CHUNK_BYTES) this.flush()
  }

  close(): WorkloadFigures {
    this.flush()
    Fs.closeSync(this.fd)
    return { ...this.figures }
  }

  private flush() {
    Fs.writeSync(this.fd, this.chunk)
    this.chunk = ""
  }
}

/**
 * Sends `count` visitors' requests, one visitor after another, each request
 * one event as `navigator.sendBeacon` sends it, and dumps each visitor's
 * final state. The state dumped is the one that `track` stored.
 */
const drive = (
  count: number,
  corpus: Corpus,
  services: { readonly actors: VisitorActorsShape; readonly enrichment: EnrichmentShape },
  runtime: ManagedRuntime.ManagedRuntime<VisitorActors | Enrichment, unknown>,
  ids: Ids,
  dump: DumpWriter
) => {
  const stream = new VisitorStream(corpus, INGEST_KEY, seed, 1)
  let done = 0
  let current: { readonly anonId: string; state: VisitorState | undefined } | undefined
  for (;;) {
    const request = stream.nextRequest(1)
    const anonId = anonIdOf(request)
    if (current?.anonId !== anonId) {
      if (current?.state !== undefined) {
        dump.add(current.state)
        done++
      }
      if (done === count) return
      current = { anonId, state: undefined }
    }
    for (const [visitor, events] of enrichRequest(request, services.enrichment)) {
      const message: TrackEvents = { key: { tenantId: ids.tenantId, propertyId: ids.propertyId, anonId: visitor }, events }
      current.state = runtime.runSync(services.actors.track(message)).state
      dump.countRequest(events.length)
    }
  }
}

const main = async () => {
  const runtime = ManagedRuntime.make(IngestState)
  const services = await runtime.runPromise(Effect.gen(function*() {
    return { actors: yield* VisitorActors, enrichment: yield* Enrichment }
  }))
  const corpus = loadCorpus(TESTDATA_DIR)
  const ids: Ids = { tenantId: randomUUID(), propertyId: randomUUID() }
  warmUp(corpus, services.enrichment, ids)

  const before = await settledHeap()
  if (snapshotPrefix !== undefined) V8.writeHeapSnapshot(`${snapshotPrefix}-before.heapsnapshot`)
  const started = performance.now()
  const dump = new DumpWriter(dumpFile)
  drive(visitors, corpus, services, runtime, ids, dump)
  const workload = dump.close()
  const buildSeconds = (performance.now() - started) / 1000
  const after = await settledHeap()
  if (snapshotPrefix !== undefined) V8.writeHeapSnapshot(`${snapshotPrefix}-after.heapsnapshot`)

  const mapSize = runtime.runSync(services.actors.size)
  writeChildResult(resultFile, { side: "actors", visitors, mapSize, before, after, buildSeconds, workload })
  await runtime.dispose()
}

await main()
