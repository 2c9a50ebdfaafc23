/**
 * Fixed-window request counters in this process's memory, for abuse control
 * on public endpoints. Keys are hashes (an IP hash, a normalised email's
 * hash), never raw personal data.
 *
 * NOTE: with several instances each keeps its own counters, so the
 * effective limit is the limit times the number of instances.
 */
import { Clock, Context, Effect, Layer, Schedule } from "effect"

export interface RateDecision {
  readonly allowed: boolean
  /** Seconds until the window that refused the request ends. */
  readonly retryAfterSeconds: number
}

export interface RateLimiterShape {
  /** Counts one request against `key` and returns whether it is within `limit` per `windowMs`. */
  readonly take: (key: string, limit: number, windowMs: number) => Effect.Effect<RateDecision>
}

const MAX_KEYS = 100_000

export class RateLimiter extends Context.Service<RateLimiter, RateLimiterShape>()("porchlight/services/RateLimiter") {
  static readonly layer = Layer.effect(
    RateLimiter,
    Effect.gen(function*() {
      const windows = new Map<string, { count: number; endsAt: number }>()

      const take = (key: string, limit: number, windowMs: number) =>
        Effect.map(Clock.currentTimeMillis, (now): RateDecision => {
          const current = windows.get(key)
          if (current === undefined || current.endsAt <= now) {
            if (windows.size >= MAX_KEYS) windows.delete(windows.keys().next().value ?? "")
            windows.set(key, { count: 1, endsAt: now + windowMs })
            return { allowed: true, retryAfterSeconds: 0 }
          }
          current.count++
          return current.count <= limit
            ? { allowed: true, retryAfterSeconds: 0 }
            : { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((current.endsAt - now) / 1000)) }
        })

      const sweep = Effect.map(Clock.currentTimeMillis, (now) => {
        for (const [key, window] of windows) if (window.endsAt <= now) windows.delete(key)
      })
      yield* sweep.pipe(Effect.repeat(Schedule.spaced("1 minute")), Effect.forkScoped)

      return RateLimiter.of({ take })
    })
  )
}
