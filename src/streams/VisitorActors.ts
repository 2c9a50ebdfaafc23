/**
 * One actor per active visitor, keyed by tenant, property and anonId. An
 * actor is the visitor's state plus the pure `applyEvents` step; messages
 * for one visitor are applied one at a time because a step is synchronous
 * and JavaScript runs one step at a time, so no lock is needed and there is
 * no contention to resolve.
 *
 * - Idle timeout: an actor is released once its visitor has been quiet for
 *   the session timeout (30 minutes), when its session is over anyway, so
 *   memory follows active visitors only.
 * - Restarts: at start, every session active in the last 30 minutes is
 *   reloaded; an actor whose writes failed is dropped and reloaded from the
 *   database on its next message.
 * - Sharding: state and messages are plain data and no code reads another
 *   visitor's actor, so actors can later move to Effect's cluster entities
 *   keyed the same way.
 */
import { Clock, Context, Effect, Layer, Schedule } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { v7 as uuidv7 } from "uuid"
import { TenantDb } from "../services/TenantDb.ts"
import type { SessionRow, TrackEvents, VisitorKey } from "./IngestMessages.ts"
import { applyEvents, initialState, SESSION_TIMEOUT_MS, type StepResult, type VisitorState } from "./VisitorSession.ts"

export interface ActiveVisitors {
  readonly tenantId: string
  readonly propertyId: string
  readonly visitors: number
}

export interface VisitorActorsShape {
  /** Delivers one request's events to the visitor's actor and returns the rows to write. */
  readonly track: (message: TrackEvents) => Effect.Effect<StepResult>
  /** Drops actors whose writes failed, so their next message reloads them from the database. */
  readonly evict: (keys: ReadonlyArray<VisitorKey>) => Effect.Effect<void>
  /** Visitors seen in the last `windowMs`, per property, from the live actors. */
  readonly activeVisitors: (tenantId: string, windowMs: number) => Effect.Effect<ReadonlyArray<ActiveVisitors>>
  readonly size: Effect.Effect<number>
}

const SWEEP_INTERVAL = "1 minute"

export class VisitorActors extends Context.Service<VisitorActors, VisitorActorsShape>()(
  "porchlight/streams/VisitorActors"
) {
  static readonly layer = Layer.effect(
    VisitorActors,
    Effect.gen(function*() {
      const sql = yield* SqlClient
      const tenants = yield* TenantDb
      const actors = new Map<string, VisitorState>()
      const needsReload = new Set<string>()

      const reloaded = yield* reloadOpenSessions(sql)
      for (const state of reloaded) actors.set(keyOf(state.key), state)
      yield* Effect.logInfo("visitor actors reloaded").pipe(Effect.annotateLogs({ actors: reloaded.length }))

      const loadOne = (key: VisitorKey) =>
        tenants.withTenant(key.tenantId, sql<OpenSessionRow>`
          SELECT ${sessionColumns(sql)}
          FROM sessions s JOIN visitors v ON v.tenant_id = s.tenant_id AND v.id = s.visitor_id
          WHERE v.property_id = ${key.propertyId} AND v.anon_id = ${key.anonId} AND s.ended_at IS NULL
          ORDER BY s.last_event_at DESC LIMIT 1`).pipe(
          Effect.map((rows) => rows[0] === undefined ? undefined : stateFromRow(rows[0])),
          // Without its stored session the visitor starts a new one; that
          // splits a visit but loses no event.
          Effect.catchCause((cause) =>
            Effect.as(Effect.logWarning("could not reload a visitor's session", cause), undefined)
          )
        )

      const track = (message: TrackEvents) =>
        Effect.gen(function*() {
          const id = keyOf(message.key)
          const now = yield* Clock.currentTimeMillis
          if (needsReload.has(id)) {
            needsReload.delete(id)
            const loaded = yield* loadOne(message.key)
            if (loaded !== undefined && !actors.has(id)) actors.set(id, loaded)
          }
          const result = applyEvents(actors.get(id) ?? initialState(message.key, now), message, uuidv7)
          actors.set(id, result.state)
          return result
        })

      const evict = (keys: ReadonlyArray<VisitorKey>) =>
        Effect.sync(() => {
          for (const key of keys) {
            actors.delete(keyOf(key))
            needsReload.add(keyOf(key))
          }
        })

      const sweep = Effect.gen(function*() {
        const cutoff = (yield* Clock.currentTimeMillis) - SESSION_TIMEOUT_MS
        let released = 0
        for (const [id, state] of actors) {
          if (state.lastActiveAt < cutoff) {
            actors.delete(id)
            released++
          }
        }
        if (released > 0) {
          yield* Effect.logDebug("idle visitor actors released").pipe(
            Effect.annotateLogs({ released, active: actors.size })
          )
        }
      })
      yield* sweep.pipe(Effect.repeat(Schedule.spaced(SWEEP_INTERVAL)), Effect.forkScoped)

      const activeVisitors = (tenantId: string, windowMs: number) =>
        Effect.gen(function*() {
          const since = (yield* Clock.currentTimeMillis) - windowMs
          const counts = new Map<string, number>()
          for (const state of actors.values()) {
            if (state.key.tenantId !== tenantId || state.lastActiveAt < since) continue
            counts.set(state.key.propertyId, (counts.get(state.key.propertyId) ?? 0) + 1)
          }
          return [...counts].map(([propertyId, visitors]) => ({ tenantId, propertyId, visitors }))
        })

      return VisitorActors.of({ track, evict, activeVisitors, size: Effect.sync(() => actors.size) })
    }).pipe(Effect.annotateLogs("service", "visitor-actors"))
  )
}

const keyOf = (key: VisitorKey) => `${key.tenantId}\u0000${key.propertyId}\u0000${key.anonId}`

interface OpenSessionRow {
  readonly id: string
  readonly tenantId: string
  readonly propertyId: string
  readonly anonId: string
  readonly startedAt: Date
  readonly lastEventAt: Date
  readonly landingPath: string | null
  readonly exitPath: string | null
  readonly referrer: string | null
  readonly referrerDomain: string | null
  readonly searchTerm: string | null
  readonly utmSource: string | null
  readonly utmMedium: string | null
  readonly utmCampaign: string | null
  readonly utmTerm: string | null
  readonly utmContent: string | null
  readonly trafficSource: SessionRow["trafficSource"]
  readonly deviceType: SessionRow["deviceType"]
  readonly countryCode: string | null
  readonly pageViews: number
  readonly events: number
  readonly isConversion: boolean
  readonly exitEventId: string | null
}

const sessionColumns = (sql: SqlClient) =>
  sql.unsafe(`s.id, s.tenant_id AS "tenantId", s.property_id AS "propertyId", v.anon_id AS "anonId",
    s.started_at AS "startedAt", s.last_event_at AS "lastEventAt", s.landing_path AS "landingPath",
    s.exit_path AS "exitPath", s.referrer, s.referrer_domain AS "referrerDomain",
    s.search_term AS "searchTerm", s.utm_source AS "utmSource", s.utm_medium AS "utmMedium",
    s.utm_campaign AS "utmCampaign", s.utm_term AS "utmTerm", s.utm_content AS "utmContent",
    s.traffic_source AS "trafficSource", s.device_type AS "deviceType", s.country_code AS "countryCode",
    s.page_views AS "pageViews", s.events, s.is_conversion AS "isConversion",
    (SELECT e.id FROM events e WHERE e.tenant_id = s.tenant_id AND e.session_id = s.id AND e.is_exit
     ORDER BY e."timestamp" DESC LIMIT 1) AS "exitEventId"`)

const reloadOpenSessions = (sql: SqlClient) =>
  Effect.gen(function*() {
    const since = new Date((yield* Clock.currentTimeMillis) - SESSION_TIMEOUT_MS)
    const rows = yield* sql<OpenSessionRow>`
      SELECT id, tenant_id AS "tenantId", property_id AS "propertyId", anon_id AS "anonId",
             started_at AS "startedAt", last_event_at AS "lastEventAt", landing_path AS "landingPath",
             exit_path AS "exitPath", referrer, referrer_domain AS "referrerDomain", search_term AS "searchTerm",
             utm_source AS "utmSource", utm_medium AS "utmMedium", utm_campaign AS "utmCampaign",
             utm_term AS "utmTerm", utm_content AS "utmContent", traffic_source AS "trafficSource",
             device_type AS "deviceType", country_code AS "countryCode", page_views AS "pageViews", events,
             is_conversion AS "isConversion", exit_event_id AS "exitEventId"
      FROM porchlight_open_sessions(${since})`
    return rows.map(stateFromRow)
  }).pipe(Effect.orDie)

const stateFromRow = (row: OpenSessionRow): VisitorState => {
  const key = { tenantId: row.tenantId, propertyId: row.propertyId, anonId: row.anonId }
  const session: SessionRow = {
    id: row.id,
    ...key,
    startedAt: row.startedAt.getTime(),
    lastEventAt: row.lastEventAt.getTime(),
    landingPath: row.landingPath,
    exitPath: row.exitPath,
    referrer: row.referrer,
    referrerDomain: row.referrerDomain,
    searchTerm: row.searchTerm,
    utmSource: row.utmSource,
    utmMedium: row.utmMedium,
    utmCampaign: row.utmCampaign,
    utmTerm: row.utmTerm,
    utmContent: row.utmContent,
    trafficSource: row.trafficSource,
    deviceType: row.deviceType,
    countryCode: row.countryCode?.trim() ?? null,
    pageViews: row.pageViews,
    events: row.events,
    isConversion: row.isConversion
  }
  return {
    key,
    session,
    exitEventId: row.exitEventId,
    recentClientEventIds: [],
    lastActiveAt: session.lastEventAt
  }
}
