/**
 * API key format. A key is a scope tag and 32 random bytes in base64url:
 * `pk_…` for ingest keys, which are public by nature (they ship in page
 * code), and `sk_…` for admin keys, which are secrets. The first 12
 * characters are stored in clear as a lookup prefix; the whole key only as
 * its SHA-256, which is enough for 256-bit random keys.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"

export type ApiKeyScope = "ingest" | "admin"

export const PREFIX_LENGTH = 12

const SCOPE_TAG: Record<ApiKeyScope, string> = { ingest: "pk_", admin: "sk_" }

export const generateApiKey = (scope: ApiKeyScope): string => `${SCOPE_TAG[scope]}${randomBytes(32).toString("base64url")}`

export const keyPrefix = (key: string): string => key.slice(0, PREFIX_LENGTH)

export const hashApiKey = (key: string): Buffer => createHash("sha256").update(key, "utf8").digest()

/** Compares a presented key with a stored hash in constant time. */
export const keyMatches = (key: string, storedHash: Uint8Array): boolean => {
  const presented = hashApiKey(key)
  return presented.length === storedHash.length && timingSafeEqual(presented, storedHash)
}
