/**
 * Routes Effect's logger into pino, so every log line is one JSON object on
 * stdout: the message, the level, the log annotations as fields, and the cause
 * of a failure when there is one.
 */
import { Cause, Layer, Logger, References } from "effect"
import type { LogLevel } from "effect/LogLevel"
import { pino } from "pino"
import type { LogLevelName } from "./AppConfig.ts"

const PINO_LEVEL: Record<LogLevel, pino.Level | "silent"> = {
  All: "trace",
  Trace: "trace",
  Debug: "debug",
  Info: "info",
  Warn: "warn",
  Error: "error",
  Fatal: "fatal",
  None: "silent"
}

const EFFECT_LEVEL: Record<LogLevelName, LogLevel> = {
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  error: "Error",
  fatal: "Fatal"
}

/** Builds the pino logger; `destination` is stdout unless a test passes a stream. */
export const makePino = (level: LogLevelName, destination?: pino.DestinationStream) =>
  pino({
    level,
    base: { app: "porchlight" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) }
  }, destination ?? pino.destination({ fd: 1, sync: true }))

/** An Effect logger that writes each entry through the given pino logger. */
export const pinoLogger = (target: pino.Logger) =>
  Logger.make<unknown, void>(({ cause, fiber, logLevel, message }) => {
    const level = PINO_LEVEL[logLevel]
    if (level === "silent") return
    const fields: Record<string, unknown> = { ...fiber.getRef(References.CurrentLogAnnotations) }
    if (cause.reasons.length > 0) {
      fields["err"] = Cause.pretty(cause)
    }
    const parts = Array.isArray(message) ? message : [message]
    const [first, ...rest] = parts
    if (rest.length > 0) fields["details"] = rest
    target[level](fields, typeof first === "string" ? first : JSON.stringify(first))
  })

/** Replaces Effect's default loggers with pino and sets the minimum level. */
export const layerLogger = (level: LogLevelName, destination?: pino.DestinationStream) => {
  const target = makePino(level, destination)
  return Layer.mergeAll(
    Logger.layer([pinoLogger(target)]),
    Layer.succeed(References.MinimumLogLevel, EFFECT_LEVEL[level])
  )
}
