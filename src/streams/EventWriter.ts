/**
 * Group commit for ingest. Requests submit their rows and wait. Each of
 * WRITE_LANES writer fibers takes everything queued in its lane (up to
 * MAX_FLUSH_EVENTS), writes it in one transaction per tenant, and then
 * completes every waiting request. Under load the rows that arrive during
 * one flush form the lane's next batch, so a request waits at most for the
 * flush in progress plus its own. At low load a flush starts as soon as a
 * request arrives. A visitor's rows always take the same lane, and the
 * lanes' transactions overlap: while one waits for its commit to reach the
 * disk, another is being built and sent.
 *
 * The buffer is bounded: a submit that would take it past MAX_BUFFERED_EVENTS
 * fails at once with `WriteFailed` "buffer_full" (503 with Retry-After)
 * instead of waiting.
 * Closing the layer's scope stops new submits and drains the buffer.
 */
import { Context, Deferred, Effect, Layer, Queue, Schema } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { type TenantBatch, writeTenantBatch } from "./EventStatements.ts"
import type { EventRow, RejectionRow, SessionRow, VisitorRow, VisitorWrites } from "./IngestMessages.ts"

export const MAX_BUFFERED_EVENTS = 20_000
const MAX_FLUSH_EVENTS = 5_000
const WRITE_TIMEOUT = "5 seconds"
const DRAIN_TIMEOUT_MS = 20_000
const TENANT_WRITE_CONCURRENCY = 4
/** Batches written at the same time, each on its own connection; see `splitByLane`. */
export const WRITE_LANES: number = 2

export class WriteFailed extends Schema.TaggedError<WriteFailed>()("WriteFailed", {
  reason: Schema.Literals(["buffer_full", "shutting_down", "database_unavailable"])
}) {}

export interface WriteRequest {
  readonly tenantId: string
  readonly writes: ReadonlyArray<VisitorWrites>
  readonly rejections: ReadonlyArray<RejectionRow>
}

export interface EventWriterShape {
  /** Queues the rows and waits until their transaction has committed. */
  readonly submit: (request: WriteRequest) => Effect.Effect<void, WriteFailed>
  /** Fails as `submit` would when `events` more rows do not fit in the buffer now. */
  readonly ensureCapacity: (events: number) => Effect.Effect<void, WriteFailed>
}

interface Pending {
  readonly request: WriteRequest
  readonly size: number
  readonly done: Deferred.Deferred<void, WriteFailed>
}

export class EventWriter extends Context.Service<EventWriter, EventWriterShape>()("porchlight/streams/EventWriter") {
  static readonly layer = Layer.effect(
    EventWriter,
    Effect.gen(function*() {
      const sql = yield* SqlClient
      let buffered = 0
      let accepting = true
      let flushesInProgress = 0

      const writeTenant = (tenantId: string, pendings: ReadonlyArray<Pending>) =>
        writeTenantBatch(sql, mergeRequests(tenantId, pendings)).pipe(
          Effect.timeout(WRITE_TIMEOUT),
          Effect.matchCauseEffect({
            onSuccess: () => Effect.forEach(pendings, (pending) => Deferred.succeed(pending.done, undefined)),
            onFailure: (cause) =>
              Effect.logError("ingest batch write failed", cause).pipe(
                Effect.annotateLogs({ tenantId, requests: pendings.length }),
                Effect.andThen(Effect.forEach(pendings, (pending) =>
                  Deferred.fail(pending.done, new WriteFailed({ reason: "database_unavailable" }))))
              )
          })
        )

      const flush = (lane: number, pendings: ReadonlyArray<Pending>) =>
        Effect.gen(function*() {
          flushesInProgress++
          const byTenant = Map.groupBy(pendings, (pending) => pending.request.tenantId)
          yield* Effect.forEach(byTenant, ([tenantId, group]) => writeTenant(tenantId, group), {
            concurrency: TENANT_WRITE_CONCURRENCY,
            discard: true
          })
          buffered -= pendings.reduce((sum, pending) => sum + pending.size, 0)
          yield* Effect.logDebug("ingest batch flushed").pipe(Effect.annotateLogs({ lane, requests: pendings.length }))
        }).pipe(Effect.ensuring(Effect.sync(() => {
          flushesInProgress--
        })))

      const takeBatch = (queue: Queue.Queue<Pending>) =>
        Effect.gen(function*() {
          const first = yield* Queue.take(queue)
          const batch = [first]
          let events = first.size
          while (events < MAX_FLUSH_EVENTS) {
            const next = Queue.takeUnsafe(queue)
            if (next === undefined || next._tag === "Failure") break
            batch.push(next.value)
            events += next.value.size
          }
          return batch
        })

      const lanes: Array<Queue.Queue<Pending>> = []
      for (let lane = 0; lane < WRITE_LANES; lane++) {
        const queue = yield* Queue.unbounded<Pending>()
        lanes.push(queue)
        yield* Effect.flatMap(takeBatch(queue), (batch) => flush(lane, batch)).pipe(Effect.forever, Effect.forkScoped)
      }

      // Registered after the writer fibers, so it runs before they are
      // interrupted: stop accepting, then wait for the buffer to drain.
      yield* Effect.addFinalizer(() =>
        Effect.gen(function*() {
          accepting = false
          const started = Date.now()
          while ((buffered > 0 || flushesInProgress > 0) && Date.now() - started < DRAIN_TIMEOUT_MS) {
            yield* Effect.sleep("10 millis")
          }
          yield* Effect.logInfo("ingest writer drained").pipe(
            Effect.annotateLogs({ leftBuffered: buffered, waitedMs: Date.now() - started })
          )
        })
      )

      const ensureCapacity = (events: number) =>
        Effect.suspend(() => {
          if (!accepting) return Effect.fail(new WriteFailed({ reason: "shutting_down" }))
          if (buffered + events > MAX_BUFFERED_EVENTS) return Effect.fail(new WriteFailed({ reason: "buffer_full" }))
          return Effect.void
        })

      const submit = (request: WriteRequest) =>
        Effect.gen(function*() {
          const parts = splitByLane(request)
          const size = parts.reduce((sum, part) => sum + part.size, 0)
          yield* ensureCapacity(size)
          buffered += size
          const waits: Array<Deferred.Deferred<void, WriteFailed>> = []
          for (const part of parts) {
            const done = yield* Deferred.make<void, WriteFailed>()
            waits.push(done)
            Queue.offerUnsafe(lanes[part.lane] ?? lanes[0]!, { request: part.request, size: part.size, done })
          }
          // Every part settles before the request completes, so that a failed
          // part never leaves another one still writing behind a 503.
          const outcomes = yield* Effect.forEach(waits, (done) => Effect.exit(Deferred.await(done)))
          for (const outcome of outcomes) {
            if (outcome._tag === "Failure") return yield* outcome
          }
        })

      return EventWriter.of({ submit, ensureCapacity })
    }).pipe(Effect.annotateLogs("service", "event-writer"))
  )
}

interface LanePart {
  readonly lane: number
  readonly request: WriteRequest
  readonly size: number
}

/**
 * Splits a request by write lane. A visitor's rows always go to the same
 * lane, and a lane writes its batches one after another, so one visitor's
 * writes commit in the order its actor produced them while the lanes'
 * transactions overlap. The rejections go with the first part.
 */
const splitByLane = (request: WriteRequest): ReadonlyArray<LanePart> => {
  const byLane = new Map<number, Array<VisitorWrites>>()
  for (const writes of request.writes) {
    const lane = laneOf(writes.visitor)
    const list = byLane.get(lane)
    if (list === undefined) byLane.set(lane, [writes])
    else list.push(writes)
  }
  if (byLane.size === 0) {
    return [{ lane: 0, request, size: request.rejections.length }]
  }
  let rejections = request.rejections
  const parts: Array<LanePart> = []
  for (const [lane, writes] of byLane) {
    parts.push({
      lane,
      request: { tenantId: request.tenantId, writes, rejections },
      size: writes.reduce((sum, item) => sum + item.events.length, 0) + rejections.length
    })
    rejections = []
  }
  return parts
}

/** Picks a visitor's lane from a small string hash (FNV-1a) of its property and anonId. */
const laneOf = (visitor: VisitorRow): number => {
  if (WRITE_LANES === 1) return 0
  let hash = 0x811c9dc5
  for (const text of [visitor.propertyId, visitor.anonId]) {
    for (let index = 0; index < text.length; index++) {
      hash ^= text.charCodeAt(index)
      hash = Math.imul(hash, 0x01000193)
    }
  }
  return (hash >>> 0) % WRITE_LANES
}

/** Merges the requests of one tenant into one batch, keeping each row once. */
const mergeRequests = (tenantId: string, pendings: ReadonlyArray<Pending>): TenantBatch => {
  const visitors = new Map<string, VisitorRow>()
  const sessions = new Map<string, SessionRow>()
  const events: Array<EventRow> = []
  const clientIds = new Set<string>()
  const ended: Array<{ id: string; endedAt: number }> = []
  const exitCleared: Array<string> = []
  const rejections: Array<RejectionRow> = []
  for (const { request } of pendings) {
    rejections.push(...request.rejections)
    for (const writes of request.writes) {
      const visitorKey = `${writes.visitor.propertyId}\u0000${writes.visitor.anonId}`
      const known = visitors.get(visitorKey)
      if (known === undefined || known.seenAt <= writes.visitor.seenAt) visitors.set(visitorKey, writes.visitor)
      for (const session of writes.sessions) {
        const previous = sessions.get(session.id)
        if (previous === undefined || previous.events <= session.events) sessions.set(session.id, session)
      }
      for (const event of writes.events) {
        // One INSERT may not claim the same receipt twice; a second event
        // with a client id already in this batch is a retry.
        if (event.clientEventId !== null) {
          const receipt = `${event.propertyId}\u0000${event.clientEventId}`
          if (clientIds.has(receipt)) continue
          clientIds.add(receipt)
        }
        events.push(event)
      }
      ended.push(...writes.endedSessions)
      exitCleared.push(...writes.exitClearedEventIds)
    }
  }
  return {
    tenantId,
    visitors: [...visitors.values()],
    sessions: [...sessions.values()],
    endedSessions: ended,
    events,
    exitClearedEventIds: exitCleared,
    rejections
  }
}
