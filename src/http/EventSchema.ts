/**
 * The shape of one tracked event, checked per event so that one bad event
 * in a batch rejects only itself.
 */
import { Result, Schema } from "effect"
import type { IncomingEvent } from "../services/Enrichment.ts"
import type { FieldProblem } from "./ApiError.ts"
import { issueFields } from "./Body.ts"

const Token = (max: number) => Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(max), Schema.isPattern(/^[\w.:-]+$/))
const ShortText = Schema.String.check(Schema.isMaxLength(256))

const EventBody = Schema.Struct({
  eventId: Schema.optional(Token(64)),
  anonId: Token(128),
  eventType: Schema.String.check(Schema.isPattern(/^[A-Za-z][\w.:-]{0,63}$/)),
  path: Schema.String.check(Schema.isMaxLength(2048), Schema.isPattern(/^\//)),
  referrer: Schema.optional(Schema.String.check(Schema.isMaxLength(2048))),
  utm: Schema.optional(Schema.Struct({
    source: Schema.optional(ShortText),
    medium: Schema.optional(ShortText),
    campaign: Schema.optional(ShortText),
    term: Schema.optional(ShortText),
    content: Schema.optional(ShortText)
  })),
  props: Schema.optional(
    Schema.Record(
      Schema.String.check(Schema.isMaxLength(64)),
      Schema.Union([Schema.Finite, ShortText, Schema.Boolean])
    ).check(Schema.isMaxProperties(32))
  ),
  timestamp: Schema.optional(Schema.Union([Schema.Finite, Schema.String.check(Schema.isMaxLength(40))]))
})

/** Props the dashboard reads as numbers; another type would corrupt its percentiles. */
const NUMERIC_PROPS = ["fcpMs", "lcpMs", "inpMs", "clsScore", "ttfbMs", "engagedTimeMs", "scrollDepthPercent"]

export interface EventFields extends IncomingEvent {
  readonly anonId: string
}

export type EventValidation =
  | { readonly ok: true; readonly event: EventFields }
  | { readonly ok: false; readonly reason: string; readonly fields: ReadonlyArray<FieldProblem> }

const decode = Schema.decodeUnknownResult(EventBody, { errors: "all", onExcessProperty: "ignore" })

export const validateEvent = (raw: unknown): EventValidation => {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { ok: false, reason: "not_an_object", fields: [{ path: "(event)", code: "invalid_type" }] }
  }
  const decoded = decode(raw)
  if (Result.isFailure(decoded)) {
    return { ok: false, reason: "invalid_event", fields: issueFields(decoded.failure.issue) }
  }
  const event = decoded.success
  const problems: Array<FieldProblem> = []
  for (const name of NUMERIC_PROPS) {
    const value = event.props?.[name]
    if (value !== undefined && (typeof value !== "number" || value < 0)) {
      problems.push({ path: `props.${name}`, code: "invalid" })
    }
  }
  const timestamp = parseTimestamp(event.timestamp)
  if (event.timestamp !== undefined && timestamp === undefined) problems.push({ path: "timestamp", code: "invalid" })
  if (problems.length > 0) return { ok: false, reason: "invalid_event", fields: problems }
  return {
    ok: true,
    event: {
      anonId: event.anonId,
      eventId: event.eventId,
      eventType: event.eventType,
      path: event.path,
      referrer: event.referrer,
      utm: event.utm,
      props: event.props,
      timestamp
    }
  }
}

/** Epoch milliseconds from a number or an ISO 8601 string, or undefined when neither. */
const parseTimestamp = (value: number | string | undefined): number | undefined => {
  if (value === undefined) return undefined
  const millis = typeof value === "number" ? value : Date.parse(value)
  return Number.isFinite(millis) && millis > 0 ? millis : undefined
}
