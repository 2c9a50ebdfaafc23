/**
 * The metrics API (admin key): the summary of every metric with its
 * comparison, the breakdowns the dashboard shows, a daily series, leads by
 * first-touch source, Core Web Vitals per page, and the realtime count.
 * Dates are calendar days in each property's time zone.
 */
import { Clock, Effect } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { type DayRange, type Dimension, DIMENSIONS, Metrics, type RangeTotals } from "../services/Metrics.ts"
import { Properties } from "../services/Properties.ts"
import { LiveDays } from "../services/LiveDays.ts"
import { VisitorActors } from "../streams/VisitorActors.ts"
import { ApiError, type FieldProblem } from "./ApiError.ts"
import { requireKey } from "./Auth.ts"

const MAX_RANGE_DAYS = 731
const DEFAULT_RANGE_DAYS = 7
const MAX_PAGE = 100
const REALTIME_WINDOW_MS = 5 * 60 * 1000
const COMPARE_MODES = ["previous_period", "previous_year", "none"] as const
type CompareMode = (typeof COMPARE_MODES)[number]

export const summary = Effect.gen(function*() {
  const { tenantId, properties, range, query } = yield* metricsRequest
  const compareText = query.get("compare") ?? "previous_period"
  if (!isCompareMode(compareText)) {
    return yield* invalid([{ path: "compare", code: "invalid" }])
  }
  const metrics = yield* Metrics
  const ids = properties.map((property) => property.id)
  const current = yield* metrics.totals(tenantId, ids, range)
  const window = compareWindow(range, compareText)
  const previous = window === null ? null : yield* metrics.totals(tenantId, ids, window)
  const [sources, keywords, referrers] = yield* Effect.all([
    metrics.breakdown(tenantId, ids, range, "source", { limit: 20, offset: 0 }),
    metrics.breakdown(tenantId, ids, range, "keyword", { limit: 10, offset: 0 }),
    metrics.breakdown(tenantId, ids, range, "referrer", { limit: 10, offset: 0 })
  ])
  return HttpServerResponse.jsonUnsafe({
    property: properties.length === 1 ? properties[0]?.slug : "all",
    range,
    compare: window === null ? null : { mode: compareText, ...window },
    metrics: scalarMetrics(current, previous),
    trafficSourceMix: sources.map((row) => ({
      source: row.value,
      sessions: row.sessions,
      share: ratio(row.sessions, current.sessions)
    })),
    topSearchKeywords: keywords.map((row) => ({ keyword: row.value, sessions: row.sessions })),
    topReferrers: referrers.map((row) => ({
      referrer: row.value,
      sessions: row.sessions,
      conversionRate: ratio(row.conversions, row.sessions)
    })),
    freshness: freshness(current)
  })
})

export const breakdown = Effect.gen(function*() {
  const { tenantId, properties, range, query } = yield* metricsRequest
  const dimension = query.get("dimension") ?? ""
  if (!isDimension(dimension)) return yield* invalid([{ path: "dimension", code: "invalid" }])
  const page = yield* paging(query)
  const metrics = yield* Metrics
  const rows = yield* metrics.breakdown(tenantId, properties.map((property) => property.id), range, dimension, page)
  return HttpServerResponse.jsonUnsafe({
    dimension,
    range,
    ...page,
    rows: rows.map((row) => ({
      ...row,
      entranceConversionRate: ratio(row.convertingEntrances, row.entrances),
      conversionRate: ratio(row.conversions, row.sessions)
    }))
  })
})

export const series = Effect.gen(function*() {
  const { tenantId, properties, range } = yield* metricsRequest
  const metrics = yield* Metrics
  const days = yield* metrics.series(tenantId, properties.map((property) => property.id), range)
  return HttpServerResponse.jsonUnsafe({ range, days })
})

export const leadsBySource = Effect.gen(function*() {
  const { tenantId, properties, range } = yield* metricsRequest
  const metrics = yield* Metrics
  const rows = yield* metrics.leadsBySource(tenantId, properties.map((property) => property.id), range)
  return HttpServerResponse.jsonUnsafe({ range, sources: rows })
})

export const webVitals = Effect.gen(function*() {
  const { tenantId, properties, range, query } = yield* metricsRequest
  const page = yield* paging(query)
  const metrics = yield* Metrics
  const rows = yield* metrics.webVitals(tenantId, properties.map((property) => property.id), range, page)
  return HttpServerResponse.jsonUnsafe({
    range,
    ...page,
    pages: rows.map((row) => ({
      path: row.path,
      samples: row.samples,
      vitals: Object.fromEntries(Object.entries(row.vitals).map(([name, vital]) => {
        const rated = vital.good + vital.needsImprovement + vital.poor
        return [name, {
          p75: vital.p75,
          good: ratio(vital.good, rated),
          needsImprovement: ratio(vital.needsImprovement, rated),
          poor: ratio(vital.poor, rated)
        }]
      }))
    }))
  })
})

/** `GET /v1/metrics/realtime`: visitors active in the last five minutes, from the live actors. */
export const realtime = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const key = yield* requireKey("admin")
  const query = searchParams(request)
  const properties = yield* selectProperties(key.tenantId, key.propertyId, query.get("property"))
  const actors = yield* VisitorActors
  const active = yield* actors.activeVisitors(key.tenantId, REALTIME_WINDOW_MS)
  const counts = new Map(active.map((entry) => [entry.propertyId, entry.visitors]))
  const perProperty = properties.map((property) => ({ property: property.slug, visitors: counts.get(property.id) ?? 0 }))
  return HttpServerResponse.jsonUnsafe({
    windowSeconds: REALTIME_WINDOW_MS / 1000,
    visitors: perProperty.reduce((sum, entry) => sum + entry.visitors, 0),
    properties: perProperty
  }, { headers: { "cache-control": "no-store" } })
})

/** The key, the selected properties and the validated range of a metrics request. */
const metricsRequest = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const key = yield* requireKey("admin")
  const query = searchParams(request)
  const properties = yield* selectProperties(key.tenantId, key.propertyId, query.get("property"))
  const now = yield* Clock.currentTimeMillis
  const range = yield* parseRange(query, now)
  const live = yield* LiveDays
  yield* live.refreshToday(key.tenantId, properties, range)
  return { tenantId: key.tenantId, properties, range, query }
})

const selectProperties = (tenantId: string, keyPropertyId: string | null, slug: string | null) =>
  Effect.gen(function*() {
    const properties = yield* Properties
    const all = yield* properties.list(tenantId, keyPropertyId)
    const selected = slug === null || slug === "" || slug === "all" ? all : all.filter((property) => property.slug === slug)
    if (selected.length === 0) {
      return yield* new ApiError({ status: 404, code: "property_not_found", params: { property: slug ?? "" } })
    }
    return selected
  })

const parseRange = (query: URLSearchParams, now: number) =>
  Effect.gen(function*() {
    const today = new Date(now).toISOString().slice(0, 10)
    const to = query.get("to") ?? today
    const from = query.get("from") ?? addDays(to, -(DEFAULT_RANGE_DAYS - 1))
    const problems: Array<FieldProblem> = []
    if (!isDate(from)) problems.push({ path: "from", code: "invalid_date" })
    if (!isDate(to)) problems.push({ path: "to", code: "invalid_date" })
    if (problems.length === 0 && from > to) problems.push({ path: "to", code: "before_from" })
    if (problems.length === 0 && daysBetween(from, to) + 1 > MAX_RANGE_DAYS) {
      problems.push({ path: "from", code: "range_too_long", params: { max: MAX_RANGE_DAYS } })
    }
    if (problems.length > 0) return yield* invalid(problems)
    return { from, to } satisfies DayRange
  })

const paging = (query: URLSearchParams) =>
  Effect.gen(function*() {
    const limit = Number(query.get("limit") ?? "20")
    const offset = Number(query.get("offset") ?? "0")
    const problems: Array<FieldProblem> = []
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
      problems.push({ path: "limit", code: "out_of_range", params: { min: 1, max: MAX_PAGE } })
    }
    if (!Number.isInteger(offset) || offset < 0 || offset > 100_000) {
      problems.push({ path: "offset", code: "out_of_range", params: { min: 0, max: 100_000 } })
    }
    if (problems.length > 0) return yield* invalid(problems)
    return { limit, offset }
  })

const compareWindow = (range: DayRange, mode: CompareMode): DayRange | null => {
  if (mode === "none") return null
  if (mode === "previous_year") return { from: addYears(range.from, -1), to: addYears(range.to, -1) }
  const length = daysBetween(range.from, range.to) + 1
  return { from: addDays(range.from, -length), to: addDays(range.from, -1) }
}

/** Pairs each metric with its comparison: counts change relatively, rates by their difference. */
const scalarMetrics = (current: RangeTotals, previous: RangeTotals | null) => {
  const count = (value: (totals: RangeTotals) => number | null) => compareCount(value(current), previous && value(previous))
  const rate = (value: (totals: RangeTotals) => number | null) => compareRate(value(current), previous && value(previous))
  return {
    uniqueVisitors: count((t) => t.uniqueVisitors),
    returningVisitorsRate: rate((t) => ratio(t.returningVisitors, t.uniqueVisitors)),
    sessions: count((t) => t.sessions),
    pageViews: count((t) => t.pageViews),
    landingPageConversionRate: rate((t) => ratio(t.convertingEntrances, t.entrances)),
    formCompletionRate: rate((t) => ratio(t.formSubmits, t.formStarts)),
    newLeads: count((t) => t.newLeads),
    leadCaptureRate: rate((t) => ratio(t.newLeads, t.uniqueVisitors)),
    timeToFirstCaptureMedianSeconds: count((t) => t.timeToFirstCaptureMedianS),
    ingestSuccessRate: rate((t) => ratio(t.accepted, t.accepted + t.rejected)),
    ttfbP95Ms: count((t) => t.ttfbP95Ms),
    referralConversionRate: rate((t) => ratio(t.referralConversions, t.referralSessions)),
    botShare: rate((t) => ratio(t.botEvents, t.events))
  }
}

const compareCount = (value: number | null, previous: number | null) => ({
  value,
  previous,
  change: value === null || previous === null || previous === 0 ? null : (value - previous) / previous
})

const compareRate = (value: number | null, previous: number | null) => ({
  value,
  previous,
  change: value === null || previous === null ? null : value - previous
})

/**
 * `rolledUpAt` is the newest rollup that the response read. `dataThrough` is the
 * oldest: each rollup reflects every event received before it ran, so the
 * whole range is complete up to that time (today's rollup is refreshed
 * before the response, see LiveDays).
 */
const freshness = (totals: RangeTotals) => ({
  dataThrough: totals.oldestRollupAt?.toISOString() ?? null,
  rolledUpAt: totals.rolledUpAt?.toISOString() ?? null
})

const ratio = (numerator: number | null, denominator: number | null) =>
  numerator === null || denominator === null || denominator === 0 ? null : numerator / denominator

const invalid = (fields: ReadonlyArray<FieldProblem>) =>
  Effect.fail(new ApiError({ status: 400, code: "invalid_request", fields }))

const searchParams = (request: HttpServerRequest.HttpServerRequest) =>
  new URLSearchParams(request.url.includes("?") ? request.url.slice(request.url.indexOf("?") + 1) : "")

const isDate = (text: string) =>
  /^\d{4}-\d{2}-\d{2}$/.test(text) && !Number.isNaN(Date.parse(`${text}T00:00:00Z`)) &&
  new Date(`${text}T00:00:00Z`).toISOString().startsWith(text)

const addDays = (day: string, days: number) => {
  const date = new Date(`${day}T00:00:00Z`)
  date.setUTCDate(date.getUTCDate() + days)
  return date.toISOString().slice(0, 10)
}

const addYears = (day: string, years: number) => {
  const [year = "1970", month = "01", date = "01"] = day.split("-")
  const shifted = `${String(Number(year) + years).padStart(4, "0")}-${month}-${date}`
  // 29 February has no counterpart in a common year: use 28 February.
  return isDate(shifted) ? shifted : `${shifted.slice(0, 8)}28`
}

const daysBetween = (from: string, to: string) =>
  Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000)

const isCompareMode = (text: string): text is CompareMode => (COMPARE_MODES as ReadonlyArray<string>).includes(text)
const isDimension = (text: string): text is Dimension => (DIMENSIONS as ReadonlyArray<string>).includes(text)
