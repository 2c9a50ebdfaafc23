/**
 * Entry point: reads the configuration, then runs the service until SIGINT
 * or SIGTERM, which drain it and exit 0.
 */
import { Cause, Effect, Exit, Layer } from "effect"
import { appLayer, loggingLayer } from "./App.ts"
import { describeStartFailure, runEntryPoint } from "./Runtime.ts"
import { loadSettings } from "./services/AppConfig.ts"

const program = Effect.gen(function*() {
  const settings = yield* loadSettings
  return yield* Layer.launch(appLayer(settings)).pipe(
    Effect.onExit((exit) => {
      if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return Effect.logInfo("service stopped")
      // Known start failures get their one-line message from the teardown.
      return describeStartFailure(exit.cause) === undefined
        ? Effect.logFatal("service failed", exit.cause)
        : Effect.void
    }),
    Effect.annotateLogs("service", "main"),
    Effect.provide(loggingLayer(settings))
  )
})

runEntryPoint(program)
