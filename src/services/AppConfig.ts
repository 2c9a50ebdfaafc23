/**
 * The service's settings, read from the environment once at start through
 * Effect's Config. This is the only module that reads the environment; a
 * missing or malformed variable stops the start with one line that names it
 * and the expected form.
 */
import { Config, Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import * as Path from "node:path"

export type TrustProxy = "none" | "fly"
export type LogLevelName = "fatal" | "error" | "warn" | "info" | "debug" | "trace"

export interface AppSettings {
  readonly host: string
  readonly port: number
  /** External PostgreSQL; when absent the service runs an embedded one. */
  readonly databaseUrl: Option.Option<Redacted.Redacted<URL>>
  /** Login of the application role, when the operator manages it. */
  readonly databaseAppUrl: Option.Option<Redacted.Redacted<URL>>
  readonly dataDir: string
  /** Port of the embedded PostgreSQL, which listens on 127.0.0.1 only. */
  readonly embeddedPostgresPort: number
  readonly ipHashPepper: Option.Option<Redacted.Redacted<string>>
  readonly adminApiKey: Option.Option<Redacted.Redacted<string>>
  readonly ingestApiKey: Option.Option<Redacted.Redacted<string>>
  readonly corsAllowedOrigins: ReadonlyArray<string>
  readonly privacyContactEmail: Option.Option<string>
  readonly geoipCountryDb: Option.Option<string>
  readonly trustProxy: TrustProxy
  readonly logLevel: LogLevelName
  readonly databasePoolSize: number
  /** How long a resolved API key is trusted before it is read again: the revocation delay. */
  readonly apiKeyCacheSeconds: number
  /** Lead submissions allowed per client IP per minute. */
  readonly leadRateLimitPerMinute: number
  /** Lead submissions allowed per email address per hour. */
  readonly leadRateLimitPerEmailHour: number
  /** Event requests allowed per client IP and property per minute. */
  readonly ingestRateLimitPerMinute: number
}

export class InvalidSetting extends Schema.TaggedError<InvalidSetting>()("InvalidSetting", {
  variable: Schema.String,
  expected: Schema.String
}) {
  override get message(): string {
    return `invalid configuration: ${this.variable} must be ${this.expected}`
  }
}

export class AppConfig extends Context.Service<AppConfig, AppSettings>()("porchlight/services/AppConfig") {
  static readonly layer = Layer.effect(AppConfig, Effect.suspend(() => loadSettings))

  static readonly layerWith = (settings: AppSettings) => Layer.succeed(AppConfig, settings)
}

const LOG_LEVELS: ReadonlyArray<LogLevelName> = ["fatal", "error", "warn", "info", "debug", "trace"]
const API_KEY_PATTERN = /^[A-Za-z0-9_-]{24,128}$/

/** Reads and validates every setting; the first invalid one fails the start. */
export const loadSettings: Effect.Effect<AppSettings, InvalidSetting> = Effect.gen(function*() {
  const host = yield* setting("HOST", Config.NonEmptyString("HOST"), "a host name or address", "0.0.0.0")
  const port = yield* setting("PORT", Config.Port("PORT"), "an integer port from 1 to 65535", 8080)
  const databaseUrl = yield* optionalSetting(
    "DATABASE_URL",
    Config.String("DATABASE_URL"),
    "a postgres:// or postgresql:// URL such as postgres://user:password@host:5432/db"
  ).pipe(Effect.flatMap(Option.match({
    onNone: () => Effect.succeed(Option.none<Redacted.Redacted<URL>>()),
    onSome: (text) => Effect.map(parseDatabaseUrl(text), (url) => Option.some(Redacted.make(url)))
  })))
  const databaseAppUrl = yield* optionalSetting(
    "DATABASE_APP_URL",
    Config.String("DATABASE_APP_URL"),
    "a postgres:// or postgresql:// URL that logs in as porchlight_app"
  ).pipe(Effect.flatMap(Option.match({
    onNone: () => Effect.succeed(Option.none<Redacted.Redacted<URL>>()),
    onSome: (text) => Effect.map(parseDatabaseUrl(text, "DATABASE_APP_URL"), (url) => Option.some(Redacted.make(url)))
  })))
  const dataDir = yield* setting("DATA_DIR", Config.NonEmptyString("DATA_DIR"), "a folder path", "./.data")
  const embeddedPostgresPort = yield* setting(
    "EMBEDDED_PG_PORT",
    Config.Port("EMBEDDED_PG_PORT"),
    "an integer port from 1 to 65535",
    54329
  )
  const ipHashPepper = yield* optionalSetting(
    "IP_HASH_PEPPER",
    Config.String("IP_HASH_PEPPER"),
    "a random secret of at least 32 characters"
  ).pipe(Effect.flatMap((value) => checkSecret("IP_HASH_PEPPER", value, (text) => text.length >= 32,
    "a random secret of at least 32 characters")))
  const adminApiKey = yield* apiKeySetting("ADMIN_API_KEY")
  const ingestApiKey = yield* apiKeySetting("INGEST_API_KEY")
  const corsText = yield* setting(
    "CORS_ALLOWED_ORIGINS",
    Config.String("CORS_ALLOWED_ORIGINS"),
    "a comma-separated list of origins such as https://www.example.com",
    ""
  )
  const corsAllowedOrigins = yield* parseOrigins(corsText, port)
  const privacyContactEmail = yield* optionalSetting(
    "PRIVACY_CONTACT_EMAIL",
    Config.String("PRIVACY_CONTACT_EMAIL"),
    "an email address such as privacy@example.com"
  ).pipe(Effect.flatMap((value) => checkOption("PRIVACY_CONTACT_EMAIL", value, looksLikeEmail,
    "an email address such as privacy@example.com")))
  const geoipCountryDb = yield* optionalSetting("GEOIP_COUNTRY_DB", Config.NonEmptyString("GEOIP_COUNTRY_DB"),
    "the path of a MaxMind .mmdb country or city database")
  const trustProxy = yield* setting("TRUST_PROXY", Config.Literals(["none", "fly"], "TRUST_PROXY"),
    "one of: none, fly", "none" as const)
  const logLevel = yield* setting("LOG_LEVEL", Config.Literals(LOG_LEVELS, "LOG_LEVEL"),
    `one of: ${LOG_LEVELS.join(", ")}`, "info" as const)
  const databasePoolSize = yield* setting("DATABASE_POOL_SIZE", Config.Int("DATABASE_POOL_SIZE"),
    "an integer from 2 to 100", 10).pipe(Effect.flatMap((size) =>
      size >= 2 && size <= 100
        ? Effect.succeed(size)
        : Effect.fail(new InvalidSetting({ variable: "DATABASE_POOL_SIZE", expected: "an integer from 2 to 100" }))
    ))

  const apiKeyCacheSeconds = yield* setting("API_KEY_CACHE_SECONDS", Config.Int("API_KEY_CACHE_SECONDS"),
    "an integer number of seconds from 0 to 300", 30).pipe(Effect.flatMap((seconds) =>
      seconds >= 0 && seconds <= 300
        ? Effect.succeed(seconds)
        : Effect.fail(new InvalidSetting({
          variable: "API_KEY_CACHE_SECONDS",
          expected: "an integer number of seconds from 0 to 300"
        }))
    ))

  const leadRateLimitPerMinute = yield* boundedInt("LEAD_RATE_LIMIT_PER_MINUTE", 10, 1, 100_000)
  const leadRateLimitPerEmailHour = yield* boundedInt("LEAD_RATE_LIMIT_PER_EMAIL_HOUR", 5, 1, 100_000)
  const ingestRateLimitPerMinute = yield* boundedInt("INGEST_RATE_LIMIT_PER_MINUTE", 3000, 1, 10_000_000)

  if (Option.isSome(databaseUrl) && Option.isNone(ipHashPepper)) {
    // With an external database the pepper cannot be generated and kept under
    // DATA_DIR, because a second machine would hash the same IP differently.
    return yield* new InvalidSetting({
      variable: "IP_HASH_PEPPER",
      expected: "set when DATABASE_URL is set (a random secret of at least 32 characters)"
    })
  }

  return {
    host,
    port,
    databaseUrl,
    databaseAppUrl,
    dataDir: Path.resolve(dataDir),
    embeddedPostgresPort,
    ipHashPepper,
    adminApiKey,
    ingestApiKey,
    corsAllowedOrigins,
    privacyContactEmail,
    geoipCountryDb,
    trustProxy,
    logLevel,
    databasePoolSize,
    apiKeyCacheSeconds,
    leadRateLimitPerMinute,
    leadRateLimitPerEmailHour,
    ingestRateLimitPerMinute
  }
})

/** Reads a non-secret setting; its error quotes the rejected value so a typo shows. */
const setting = <A>(variable: string, config: Config.Config<A>, expected: string, fallback: A) =>
  config.pipe(
    Config.withDefault(fallback),
    Effect.catch(() =>
      Effect.flatMap(Config.String(variable).pipe(Config.option, Effect.orElseSucceed(() => Option.none())), (raw) =>
        Effect.fail(new InvalidSetting({
          variable,
          expected: Option.match(raw, {
            onNone: () => expected,
            onSome: (value) => `${expected} (got "${value.slice(0, 80)}")`
          })
        })))
    )
  )

const boundedInt = (variable: string, fallback: number, min: number, max: number) => {
  const expected = `an integer from ${min} to ${max}`
  return setting(variable, Config.Int(variable), expected, fallback).pipe(
    Effect.flatMap((value) =>
      value >= min && value <= max
        ? Effect.succeed(value)
        : Effect.fail(new InvalidSetting({ variable, expected: `${expected} (got "${value}")` }))
    )
  )
}

const optionalSetting = <A>(variable: string, config: Config.Config<A>, expected: string) =>
  Effect.mapError(config.pipe(Config.option), () => new InvalidSetting({ variable, expected }))

const checkOption = <A>(variable: string, value: Option.Option<A>, valid: (a: A) => boolean, expected: string) =>
  Option.isSome(value) && !valid(value.value)
    ? Effect.fail(new InvalidSetting({ variable, expected }))
    : Effect.succeed(value)

const checkSecret = (
  variable: string,
  value: Option.Option<string>,
  valid: (text: string) => boolean,
  expected: string
) =>
  Effect.map(checkOption(variable, value, valid, expected), Option.map((text) => Redacted.make(text)))

const apiKeySetting = (variable: string) =>
  optionalSetting(variable, Config.String(variable), "24 to 128 characters of A-Z, a-z, 0-9, _ or -").pipe(
    Effect.flatMap((value) =>
      checkSecret(variable, value, (text) => API_KEY_PATTERN.test(text),
        "24 to 128 characters of A-Z, a-z, 0-9, _ or -")
    )
  )

const parseDatabaseUrl = (text: string, variable = "DATABASE_URL"): Effect.Effect<URL, InvalidSetting> => {
  const expected = "a postgres:// or postgresql:// URL such as postgres://user:password@host:5432/db"
  if (!URL.canParse(text)) {
    return Effect.fail(new InvalidSetting({ variable, expected }))
  }
  const url = new URL(text)
  const validScheme = url.protocol === "postgres:" || url.protocol === "postgresql:"
  return validScheme && url.hostname !== "" && url.pathname.length > 1
    ? Effect.succeed(url)
    : Effect.fail(new InvalidSetting({ variable, expected }))
}

/**
 * Parses the allowed origins. When none is set, the service's own origin on
 * localhost is allowed so that the example site works out of the box.
 */
const parseOrigins = (text: string, port: number): Effect.Effect<ReadonlyArray<string>, InvalidSetting> => {
  const entries = text.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "")
  if (entries.length === 0) {
    return Effect.succeed([`http://localhost:${port}`, `http://127.0.0.1:${port}`])
  }
  const origins: Array<string> = []
  for (const entry of entries) {
    const origin = URL.canParse(entry) ? new URL(entry) : undefined
    const valid = origin !== undefined && (origin.protocol === "https:" || origin.protocol === "http:") &&
      origin.origin === entry.replace(/\/$/, "")
    if (!valid) {
      return Effect.fail(new InvalidSetting({
        variable: "CORS_ALLOWED_ORIGINS",
        expected: `a comma-separated list of origins such as https://www.example.com (got an invalid entry "${
          entry.slice(0, 80)
        }")`
      }))
    }
    origins.push(origin.origin)
  }
  return Effect.succeed(origins)
}

const looksLikeEmail = (text: string) => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(text)
