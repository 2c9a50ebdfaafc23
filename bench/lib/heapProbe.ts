/**
 * Code shared by the heap benchmark's two child processes: the settled heap
 * reading, the flat visitor record that the actor child writes and the
 * floor child reads, and the result file that each child leaves for the
 * parent.
 */
import * as Fs from "node:fs"
import * as V8 from "node:v8"
import type { VisitorState } from "../../src/streams/VisitorSession.ts"

/** Full collections before a reading, so that weak references and finalizers settle between them. */
const GC_ROUNDS = 6

export interface HeapReading {
  /** `process.memoryUsage().heapUsed`, bytes. */
  readonly heapUsed: number
  /** `v8.getHeapStatistics().used_heap_size`, bytes. */
  readonly usedHeapSize: number
  /** Bytes used in V8's old space, where long-lived objects end up. */
  readonly oldSpaceUsed: number
  /** `process.memoryUsage().external`, bytes held outside the V8 heap (buffers). */
  readonly external: number
}

/**
 * Forces full garbage collections, yielding to the event loop between them,
 * and then reads the heap. The "last-resort" flavour also drops V8's caches
 * and flushable bytecode, as a heap snapshot does, so a reading does not
 * depend on how warm those caches happened to be.
 */
export const settledHeap = async (): Promise<HeapReading> => {
  const collect = globalThis.gc
  if (collect === undefined) throw new Error("global gc() is missing: start this process with node --expose-gc")
  for (let round = 0; round < GC_ROUNDS; round++) {
    collect({ type: "major", execution: "sync", flavor: "last-resort" })
    await new Promise((resolve) => setImmediate(resolve))
  }
  const usage = process.memoryUsage()
  const oldSpace = V8.getHeapSpaceStatistics().find((space) => space.space_name === "old_space")
  return {
    heapUsed: usage.heapUsed,
    usedHeapSize: V8.getHeapStatistics().used_heap_size,
    oldSpaceUsed: oldSpace?.space_used_size ?? Number.NaN,
    external: usage.external
  }
}

/** The fields of one visitor's actor state as one flat plain object, which the floor keeps in its Map. */
export interface FlatVisitor {
  readonly tenantId: string
  readonly propertyId: string
  readonly anonId: string
  readonly sessionId: string
  readonly startedAt: number
  readonly lastEventAt: number
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
  readonly trafficSource: string
  readonly deviceType: string
  readonly countryCode: string | null
  readonly pageViews: number
  readonly events: number
  readonly isConversion: boolean
  readonly exitEventId: string | null
  readonly recentClientEventIds: ReadonlyArray<string>
  readonly lastActiveAt: number
}

/** Copies a visitor's state into a flat record. Throws when the visitor has no open session. */
export const flattenState = (state: VisitorState): FlatVisitor => {
  const session = state.session
  if (session === undefined) throw new Error(`visitor ${state.key.anonId} has no open session after its events`)
  return {
    tenantId: state.key.tenantId,
    propertyId: state.key.propertyId,
    anonId: state.key.anonId,
    sessionId: session.id,
    startedAt: session.startedAt,
    lastEventAt: session.lastEventAt,
    landingPath: session.landingPath,
    exitPath: session.exitPath,
    referrer: session.referrer,
    referrerDomain: session.referrerDomain,
    searchTerm: session.searchTerm,
    utmSource: session.utmSource,
    utmMedium: session.utmMedium,
    utmCampaign: session.utmCampaign,
    utmTerm: session.utmTerm,
    utmContent: session.utmContent,
    trafficSource: session.trafficSource,
    deviceType: session.deviceType,
    countryCode: session.countryCode,
    pageViews: session.pageViews,
    events: session.events,
    isConversion: session.isConversion,
    exitEventId: state.exitEventId,
    recentClientEventIds: state.recentClientEventIds,
    lastActiveAt: state.lastActiveAt
  }
}

/** Checks the fields that the floor child reads from a parsed line. */
export const isFlatVisitor = (value: unknown): value is FlatVisitor =>
  typeof value === "object" && value !== null &&
  "tenantId" in value && typeof value.tenantId === "string" &&
  "propertyId" in value && typeof value.propertyId === "string" &&
  "anonId" in value && typeof value.anonId === "string" &&
  "sessionId" in value && typeof value.sessionId === "string" &&
  "recentClientEventIds" in value && Array.isArray(value.recentClientEventIds)

/** Traffic figures of one actor run, summed over its visitors. */
export interface WorkloadFigures {
  readonly requests: number
  readonly events: number
  readonly pageViews: number
  readonly recentClientEventIds: number
  readonly visitorsWithReferrer: number
  readonly visitorsWithCampaign: number
  /** Characters of every string in the visitors' states. */
  readonly stringCharacters: number
}

/** The file that a child writes for the parent when it has measured. */
export interface ChildResult {
  readonly side: "actors" | "floor"
  readonly visitors: number
  /** Entries in the side's Map after the build. */
  readonly mapSize: number
  readonly before: HeapReading
  readonly after: HeapReading
  readonly buildSeconds: number
  readonly workload?: WorkloadFigures
}

/** Checks the fields of a result file that the parent reads. */
export const isChildResult = (value: unknown): value is ChildResult =>
  typeof value === "object" && value !== null &&
  "side" in value && (value.side === "actors" || value.side === "floor") &&
  "visitors" in value && typeof value.visitors === "number" &&
  "mapSize" in value && typeof value.mapSize === "number" &&
  "before" in value && isHeapReading(value.before) &&
  "after" in value && isHeapReading(value.after)

const isHeapReading = (value: unknown): value is HeapReading =>
  typeof value === "object" && value !== null &&
  "heapUsed" in value && typeof value.heapUsed === "number" &&
  "usedHeapSize" in value && typeof value.usedHeapSize === "number"

export const writeChildResult = (file: string, result: ChildResult) => Fs.writeFileSync(file, JSON.stringify(result))

/** Characters of the strings in a flat record, which the workload figures sum. */
export const stringCharactersOf = (record: FlatVisitor): number => {
  let characters = record.recentClientEventIds.reduce((sum, id) => sum + id.length, 0)
  for (const value of Object.values(record)) {
    if (typeof value === "string") characters += value.length
  }
  return characters
}
