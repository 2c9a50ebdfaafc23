/**
 * Entry point: reads the configuration, then runs the service until SIGINT
 * or SIGTERM, which drain it and exit 0. An invalid setting prints one log
 * line naming the variable and exits 1.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit, Layer } from "effect"
import { appLayer, loggingLayer } from "./App.ts"
import { loadSettings } from "./services/AppConfig.ts"
import { makePino } from "./services/Log.ts"

const program = Effect.gen(function*() {
  const settings = yield* loadSettings
  return yield* Layer.launch(appLayer(settings)).pipe(
    Effect.onExit((exit) =>
      Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)
        ? Effect.logFatal("service failed", exit.cause)
        : Effect.logInfo("service stopped")
    ),
    Effect.annotateLogs("service", "main"),
    Effect.provide(loggingLayer(settings))
  )
})

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return onExit(0)
    const invalid = exit.cause.reasons.find((reason) => reason._tag === "Fail")
    if (invalid !== undefined && invalid.error instanceof Error && invalid.error.name === "InvalidSetting") {
      makePino("info").fatal({ service: "main" }, invalid.error.message)
    }
    onExit(1)
  }
})
