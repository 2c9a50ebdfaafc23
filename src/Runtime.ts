/**
 * Runs an entry point (`main`, `migrate`) the same way: SIGINT and SIGTERM
 * interrupt it and exit 0; an invalid setting, a port in use or another
 * known start failure is one fatal JSON log line with exit code 1.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit } from "effect"
import { makePino } from "./services/Log.ts"

export const runEntryPoint = <A, E>(program: Effect.Effect<A, E>) =>
  NodeRuntime.runMain(program, {
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return onExit(0)
      const known = describeStartFailure(exit.cause)
      if (known !== undefined) makePino("info").fatal({ service: "main" }, known)
      onExit(1)
    }
  })

/** Returns a one-line explanation for failures an operator can fix, or undefined for the rest. */
export const describeStartFailure = (cause: Cause.Cause<unknown>): string | undefined => {
  for (const reason of cause.reasons) {
    let error: unknown = undefined
    if (reason._tag === "Fail") error = reason.error
    if (reason._tag === "Die") error = reason.defect
    const message = explain(error)
    if (message !== undefined) return message
  }
  return undefined
}

const explain = (error: unknown): string | undefined => {
  if (!(error instanceof Error)) return undefined
  if (error.name === "InvalidSetting" || error.name === "EmbeddedPostgresError") return error.message
  if ("_tag" in error && (error._tag === "InvalidSetting" || error._tag === "EmbeddedPostgresError")) {
    return error.message
  }
  const inUse = findCode(error, "EADDRINUSE")
  if (inUse !== undefined) {
    return `port ${inUse.port ?? "?"} on ${inUse.address ?? "?"} is already in use; set PORT to a free port`
  }
  return undefined
}

/** Finds a Node system error with `code` along the cause chain. */
const findCode = (error: unknown, code: string): { address?: string; port?: number } | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 6 && typeof current === "object" && current !== null; depth++) {
    if ("code" in current && current.code === code) {
      return {
        ...("address" in current && typeof current.address === "string" ? { address: current.address } : {}),
        ...("port" in current && typeof current.port === "number" ? { port: current.port } : {})
      }
    }
    current = "cause" in current ? current.cause : undefined
  }
  return undefined
}
