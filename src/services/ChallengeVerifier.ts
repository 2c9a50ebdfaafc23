/**
 * A pluggable check of a bot challenge answer (such as a Turnstile or
 * hCaptcha token) sent with a lead form in the field `challenge`. The
 * default layer accepts every submission; a deployment that wants a
 * challenge provides a layer that calls its provider and answers whether
 * the token is valid for this client.
 */
import { Context, Effect, Layer } from "effect"

export interface ChallengeVerifierShape {
  readonly enabled: boolean
  /** Whether `token` proves a person; `ipHash` lets a verifier bind the token to the client. */
  readonly verify: (token: string | undefined, ipHash: string | null) => Effect.Effect<boolean>
}

export class ChallengeVerifier extends Context.Service<ChallengeVerifier, ChallengeVerifierShape>()(
  "porchlight/services/ChallengeVerifier"
) {
  /** No challenge: every submission passes. */
  static readonly layerDisabled = Layer.succeed(ChallengeVerifier, {
    enabled: false,
    verify: () => Effect.succeed(true)
  })

  /** Accepts exactly one token; for tests of the refusal path. */
  static readonly layerFixedToken = (expected: string) =>
    Layer.succeed(ChallengeVerifier, {
      enabled: true,
      verify: (token: string | undefined) => Effect.succeed(token === expected)
    })
}
