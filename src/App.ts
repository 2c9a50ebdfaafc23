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
import { ApiKeys } from "./services/ApiKeys.ts"
import { Properties } from "./services/Properties.ts"
import { TenantDb } from "./services/TenantDb.ts"

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
  const Services = Layer.mergeAll(ApiKeys.layer, Properties.layer).pipe(Layer.provideMerge(TenantDb.layer))
  return Lifecycle.pipe(
    Layer.provideMerge(HttpLive),
    Layer.provide(Services),
    Layer.provide(Bootstrap.layer),
    Layer.provideMerge(Infrastructure)
  )
}

export const loggingLayer = (settings: AppSettings) => layerLogger(settings.logLevel)
