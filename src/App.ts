/**
 * The whole service as one layer: configuration, logging, the database
 * (embedded or external, migrated), bootstrap, the SQL pool and the HTTP
 * server. Layers close in reverse order, so on SIGTERM the server stops
 * accepting and drains before the pool and the database close.
 */
import { Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import { HttpLive } from "./http/Server.ts"
import { AppConfig, type AppSettings } from "./services/AppConfig.ts"
import { Bootstrap } from "./services/Bootstrap.ts"
import { Database, SqlLive } from "./services/Database.ts"
import { layerLogger } from "./services/Log.ts"

const Lifecycle = Layer.effectDiscard(Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const database = yield* Database
  const address = HttpServer.formatAddress(server.address)
  yield* Effect.logInfo("service started").pipe(Effect.annotateLogs({ address, databaseKind: database.kind }))
  yield* Effect.addFinalizer(() => Effect.logInfo("service stopping"))
}).pipe(Effect.annotateLogs("service", "main")))

export const appLayer = (settings: AppSettings) => {
  const ConfigLive = AppConfig.layerWith(settings)
  const DatabaseLive = Database.layer.pipe(Layer.provide(ConfigLive))
  const Infrastructure = Layer.mergeAll(ConfigLive, DatabaseLive, SqlLive.pipe(Layer.provide([DatabaseLive, ConfigLive])))
  return Lifecycle.pipe(
    Layer.provideMerge(HttpLive),
    Layer.provide(Bootstrap.layer),
    Layer.provide(Infrastructure)
  )
}

export const loggingLayer = (settings: AppSettings) => layerLogger(settings.logLevel)
