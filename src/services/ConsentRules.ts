/**
 * CASL consent transitions for a lead form submission, as a pure function.
 *
 * - A ticked box is express consent, whatever came before (it is a new
 *   express consent, so it also lifts a withdrawal).
 * - An unticked inquiry gives implied consent and starts (or restarts) its
 *   six-month clock, unless the lead already has express consent, which an
 *   inquiry does not lower.
 * - A withdrawn lead stays withdrawn without a new express consent.
 */
export type ConsentStatus = "pending" | "express" | "implied" | "withdrawn"

export interface ConsentDecision {
  readonly status: ConsentStatus
  /** Whether this submission is a consent event for the audit trail. */
  readonly record: boolean
  /** Whether the implied-consent clock starts now. */
  readonly startsImpliedClock: boolean
}

export const decideConsent = (previous: ConsentStatus | undefined, expressBoxTicked: boolean): ConsentDecision => {
  if (expressBoxTicked) return { status: "express", record: true, startsImpliedClock: false }
  switch (previous) {
    case "express":
      return { status: "express", record: false, startsImpliedClock: false }
    case "withdrawn":
      return { status: "withdrawn", record: false, startsImpliedClock: false }
    default:
      return { status: "implied", record: true, startsImpliedClock: true }
  }
}
