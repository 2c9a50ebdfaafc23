/**
 * A short-lived node-postgres connection as the schema owner, for the work
 * that must not run as the application role: migrations, bootstrap and
 * operator commands. Its errors are `OwnerQueryError` with the SQLSTATE code.
 */
import { Data, Effect, Redacted } from "effect"
import pg from "pg"

export class OwnerQueryError extends Data.TaggedError("OwnerQueryError")<{
  readonly message: string
  /** PostgreSQL SQLSTATE, when the server sent one. */
  readonly code?: string
}> {}

/** Runs `use` with a connection as the owner and closes it afterwards. */
export const withOwnerClient = <A, E, R>(
  url: Redacted.Redacted<URL>,
  use: (client: pg.Client) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | OwnerQueryError, R> =>
  Effect.acquireUseRelease(
    connect(url),
    use,
    (client) => Effect.promise(() => client.end().catch(() => undefined))
  )

export const ownerQuery = (client: pg.Client, text: string, values?: ReadonlyArray<unknown>) =>
  Effect.tryPromise({
    try: () => client.query(text, values === undefined ? undefined : [...values]),
    catch: toOwnerQueryError
  })

/** Runs `body` in a transaction on `client`, rolling back on any failure. */
export const ownerTransaction = <A, E, R>(client: pg.Client, body: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    yield* ownerQuery(client, "BEGIN")
    const outcome = yield* Effect.exit(body)
    if (outcome._tag === "Failure") {
      yield* Effect.ignore(ownerQuery(client, "ROLLBACK"))
      return yield* Effect.failCause(outcome.cause)
    }
    yield* ownerQuery(client, "COMMIT")
    return outcome.value
  })

const connect = (url: Redacted.Redacted<URL>) =>
  Effect.tryPromise({
    try: async () => {
      const client = new pg.Client({ connectionString: Redacted.value(url).href, connectionTimeoutMillis: 10_000 })
      // An error on an idle connection (the server going away) must not crash
      // the process; the next query on it fails and reports it.
      client.on("error", () => undefined)
      await client.connect()
      return client
    },
    catch: (error) => new OwnerQueryError({ message: `could not connect to PostgreSQL: ${describe(error)}` })
  })

const toOwnerQueryError = (error: unknown) =>
  new OwnerQueryError({
    message: describe(error),
    ...(typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
      ? { code: error.code }
      : {})
  })

const describe = (error: unknown) => error instanceof Error ? error.message : String(error)
