/**
 * Signed tokens for unsubscribe links, including RFC 8058 one-click
 * unsubscribe (`List-Unsubscribe-Post: List-Unsubscribe=One-Click`), which
 * must work without a login or cookie, so the token alone authorises the
 * withdrawal of one lead's consent.
 *
 * A token is base64url (no padding) of 49 bytes: a version byte, the tenant
 * id (16 bytes), the lead id (16 bytes) and the first 16 bytes of an
 * HMAC-SHA256 over the first 33 bytes. The HMAC key is derived from the
 * pepper with a fixed label, so tokens need no storage and no secret of
 * their own. Tokens do not expire: a person may use an old message's link
 * at any time, and the link stays harmless after the lead is erased.
 */
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import { createHmac, timingSafeEqual } from "node:crypto"
import { Database } from "./Database.ts"

/** Label of the HMAC key derivation. Changing it invalidates every link already sent. */
const KEY_LABEL = "porchlight unsubscribe token v1"
const VERSION = 1
const UUID_BYTES = 16
const SIGNED_BYTES = 1 + 2 * UUID_BYTES
const MAC_BYTES = 16
const TOKEN_BYTES = SIGNED_BYTES + MAC_BYTES
/** Length of the base64url text of `TOKEN_BYTES` bytes without padding. */
const TOKEN_LENGTH = Math.ceil((TOKEN_BYTES * 8) / 6)
const TOKEN_PATTERN = new RegExp(`^[A-Za-z0-9_-]{${TOKEN_LENGTH}}$`)
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export class InvalidUnsubscribeToken extends Schema.TaggedError<InvalidUnsubscribeToken>()(
  "InvalidUnsubscribeToken",
  {}
) {}

export interface UnsubscribeTarget {
  readonly tenantId: string
  readonly leadId: string
}

export interface UnsubscribeTokensShape {
  /** Signs a token for the lead. Both ids must be UUIDs, and anything else throws a TypeError. */
  readonly make: (tenantId: string, leadId: string) => string
  /** Checks the token's form and signature and returns the ids it carries. */
  readonly verify: (token: string) => Effect.Effect<UnsubscribeTarget, InvalidUnsubscribeToken>
}

export class UnsubscribeTokens extends Context.Service<UnsubscribeTokens, UnsubscribeTokensShape>()(
  "porchlight/services/UnsubscribeTokens"
) {
  static readonly layer = Layer.effect(
    UnsubscribeTokens,
    Effect.gen(function*() {
      const database = yield* Database
      return makeUnsubscribeTokens(Redacted.value(database.ipHashPepper))
    })
  )
}

/** Builds the token functions for a pepper. */
export const makeUnsubscribeTokens = (pepper: string): UnsubscribeTokensShape => {
  const key = createHmac("sha256", pepper).update(KEY_LABEL).digest()
  const sign = (signed: Uint8Array) => createHmac("sha256", key).update(signed).digest().subarray(0, MAC_BYTES)

  const make = (tenantId: string, leadId: string) => {
    const signed = Buffer.concat([Buffer.of(VERSION), uuidBytes(tenantId), uuidBytes(leadId)])
    return Buffer.concat([signed, sign(signed)]).toString("base64url")
  }

  const verify = (token: string) =>
    Effect.suspend(() => {
      const target = readToken(token, sign)
      return target === undefined ? Effect.fail(new InvalidUnsubscribeToken()) : Effect.succeed(target)
    })

  return UnsubscribeTokens.of({ make, verify })
}

const readToken = (token: string, sign: (signed: Uint8Array) => Buffer): UnsubscribeTarget | undefined => {
  if (!TOKEN_PATTERN.test(token)) return undefined
  const bytes = Buffer.from(token, "base64url")
  // The last character carries unused low bits; requiring the canonical text
  // gives every token exactly one spelling.
  if (bytes.length !== TOKEN_BYTES || bytes.toString("base64url") !== token) return undefined
  if (bytes[0] !== VERSION) return undefined
  const signed = bytes.subarray(0, SIGNED_BYTES)
  if (!timingSafeEqual(bytes.subarray(SIGNED_BYTES), sign(signed))) return undefined
  return {
    tenantId: uuidText(signed.subarray(1, 1 + UUID_BYTES)),
    leadId: uuidText(signed.subarray(1 + UUID_BYTES, SIGNED_BYTES))
  }
}

const uuidBytes = (uuid: string): Buffer => {
  if (!UUID_PATTERN.test(uuid)) throw new TypeError(`not a UUID: ${uuid.slice(0, 40)}`)
  return Buffer.from(uuid.replaceAll("-", ""), "hex")
}

const uuidText = (bytes: Uint8Array): string => {
  const hex = Buffer.from(bytes).toString("hex")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
