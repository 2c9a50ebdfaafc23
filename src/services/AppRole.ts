/**
 * The application role `porchlight_app`, which the migrations create without
 * a login. At start the owner gives it a login with a password derived from
 * the pepper, so every instance that shares the pepper derives the same
 * password and none of them needs another secret. Set DATABASE_APP_URL to
 * manage the role's login yourself (for example where the owner may not
 * alter roles).
 */
import { Effect, Redacted, Schedule } from "effect"
import { createHmac } from "node:crypto"
import pg from "pg"
import { OwnerQueryError, ownerQuery, withOwnerClient } from "./OwnerClient.ts"

export const APP_ROLE = "porchlight_app"

/** Makes sure the application role can log in and returns its URL. */
export const enableAppRole = (
  ownerUrl: Redacted.Redacted<URL>,
  pepper: Redacted.Redacted<string>
): Effect.Effect<Redacted.Redacted<URL>, OwnerQueryError> =>
  Effect.gen(function*() {
    const password = createHmac("sha256", Redacted.value(pepper)).update("porchlight_app login").digest("base64url")
    const appUrl = new URL(Redacted.value(ownerUrl).href)
    appUrl.username = APP_ROLE
    appUrl.password = password
    const url = Redacted.make(appUrl)
    const canLogIn = yield* Effect.match(withOwnerClient(url, (client) => ownerQuery(client, "SELECT 1")), {
      onFailure: () => false,
      onSuccess: () => true
    })
    if (!canLogIn) {
      yield* withOwnerClient(ownerUrl, (client) =>
        ownerQuery(client, `ALTER ROLE ${APP_ROLE} WITH LOGIN PASSWORD ${pg.escapeLiteral(password)}`)
      ).pipe(
        // Two instances starting together may both alter the role; PostgreSQL
        // then fails one with "tuple concurrently updated".
        Effect.retry({ times: 3, schedule: Schedule.spaced("200 millis") })
      )
      yield* Effect.logInfo("application role login enabled").pipe(Effect.annotateLogs({ role: APP_ROLE }))
    }
    return url
  })
