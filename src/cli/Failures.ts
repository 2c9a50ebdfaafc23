/**
 * Exit codes of a CLI run and the one-line report of a failure at run time
 * (exit 1). Usage errors (exit 2) are printed by the presenter in `Usage.ts`.
 */
import { Cause, Data, Exit } from "effect"
import { CliError } from "effect/cli"

/** A failure the operator can act on, such as an unknown tenant or a slug in use. */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{ readonly message: string }> {}

export const EXIT_SUCCESS = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2
/** 128 + SIGINT, as shells report a command stopped with Ctrl-C. */
export const EXIT_INTERRUPTED = 130

const isShowHelp = (error: unknown): error is CliError.ShowHelp =>
  CliError.isCliError(error) && error._tag === "ShowHelp"

/**
 * Maps a finished run to its exit code: 2 for a usage error (which the CLI
 * module reports as ShowHelp), 1 for any other failure.
 */
export const exitCodeOf = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit)) return EXIT_SUCCESS
  if (Cause.hasInterruptsOnly(exit.cause)) return EXIT_INTERRUPTED
  const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  return failure !== undefined && isShowHelp(failure.error) ? EXIT_USAGE : EXIT_FAILURE
}

/**
 * Formats the report of a failed run for stderr. Returns undefined for a
 * usage error, which the presenter printed already, and for an interrupt.
 * A defect is a bug, so its report is the full cause with the stack.
 */
export const failureReport = (cause: Cause.Cause<unknown>): string | undefined => {
  if (Cause.hasInterruptsOnly(cause)) return undefined
  const failure = cause.reasons.find((reason) => reason._tag === "Fail")
  if (failure === undefined) return `error: unexpected failure, please report it:\n${Cause.pretty(cause)}`
  if (isShowHelp(failure.error)) return undefined
  return `error: ${firstLine(failure.error)}`
}

const firstLine = (error: unknown): string => {
  const text = error instanceof Error ? error.message : String(error)
  return text.split("\n")[0] ?? text
}
