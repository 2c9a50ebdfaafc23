/**
 * Secrets that the zero-config (embedded) mode generates once and keeps in
 * DATA_DIR/secrets.json, readable by the owner only: the embedded
 * superuser's password and, when IP_HASH_PEPPER is unset, the pepper.
 */
import { Data, Effect, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"

export class LocalSecretsError extends Data.TaggedError("LocalSecretsError")<{ readonly message: string }> {}

export interface LocalSecrets {
  readonly superuserPassword: Redacted.Redacted<string>
  readonly ipHashPepper: Redacted.Redacted<string>
}

interface StoredSecrets {
  readonly superuserPassword: string
  readonly ipHashPepper: string
}

/** Reads DATA_DIR/secrets.json, creating it with fresh random values on first use. */
export const loadLocalSecrets = (dataDir: string): Effect.Effect<LocalSecrets, LocalSecretsError> =>
  Effect.try({
    try: () => {
      const file = Path.join(dataDir, "secrets.json")
      Fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 })
      const stored = Fs.existsSync(file) ? readSecrets(file) : writeSecrets(file)
      return {
        superuserPassword: Redacted.make(stored.superuserPassword),
        ipHashPepper: Redacted.make(stored.ipHashPepper)
      }
    },
    catch: (error) => new LocalSecretsError({ message: `could not read or create ${dataDir}/secrets.json: ${String(error)}` })
  })

const readSecrets = (file: string): StoredSecrets => {
  const parsed: unknown = JSON.parse(Fs.readFileSync(file, "utf8"))
  if (
    typeof parsed === "object" && parsed !== null &&
    "superuserPassword" in parsed && typeof parsed.superuserPassword === "string" &&
    "ipHashPepper" in parsed && typeof parsed.ipHashPepper === "string"
  ) {
    return { superuserPassword: parsed.superuserPassword, ipHashPepper: parsed.ipHashPepper }
  }
  throw new Error("the file is not a JSON object with superuserPassword and ipHashPepper strings")
}

const writeSecrets = (file: string): StoredSecrets => {
  const secrets = {
    superuserPassword: randomBytes(24).toString("base64url"),
    ipHashPepper: randomBytes(32).toString("base64url")
  }
  // "wx" fails if another process created the file first, instead of
  // overwriting a pepper that is already in use.
  Fs.writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600, flag: "wx" })
  return secrets
}
