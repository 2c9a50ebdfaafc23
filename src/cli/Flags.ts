/**
 * Flags shared by several commands, and `parsedFlag`, which turns a parse
 * function into a flag whose invalid values are usage errors (exit 2).
 */
import { Effect, Result } from "effect"
import { CliError, Flag } from "effect/cli"

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export const isUuid = (text: string): boolean => UUID_PATTERN.test(text)

/**
 * A string flag whose value `parse` converts, or rejects with the expected
 * form ("an IANA time zone such as America/Toronto") and the offending part.
 */
export const parsedFlag = <A>(
  name: string,
  parse: (text: string) => Result.Result<A, { readonly expected: string; readonly value?: string }>
): Flag.Flag<A> =>
  Flag.String(name).pipe(Flag.mapEffect((text) => {
    const parsed = parse(text)
    return Result.isSuccess(parsed)
      ? Effect.succeed(parsed.success)
      : Effect.fail(
        new CliError.InvalidValue({
          option: name,
          value: parsed.failure.value ?? text,
          expected: parsed.failure.expected,
          kind: "flag"
        })
      )
  }))

/** Rejects a name shorter than `min` or longer than `max` characters. */
export const lengthBetween = (min: number, max: number) => (text: string) =>
  text.length >= min && text.length <= max
    ? Result.succeed(text)
    : Result.fail({ expected: `${min} to ${max} characters` })

export const tenantFlag = parsedFlag("tenant", (text) =>
  isUuid(text)
    ? Result.succeed(text.toLowerCase())
    : Result.fail({ expected: "a tenant id (UUID) as printed by \"tenant list\"" })).pipe(
    Flag.withMetavar("TENANT_ID"),
    Flag.withDescription("Id of the tenant (a UUID, as printed by \"tenant list\")")
  )

export const jsonFlag = Flag.Boolean("json").pipe(
  Flag.withDescription("Print the result as JSON on stdout"),
  Flag.withDefault(false)
)
