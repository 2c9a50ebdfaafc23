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
import { Bootstrap, printKeys } from "./services/Bootstrap.ts"
import { startDraining } from "./http/Draining.ts"
import { Database, SqlLive } from "./services/Database.ts"
import { layerLogger } from "./services/Log.ts"
import { ApiKeys } from "./services/ApiKeys.ts"
import { Properties } from "./services/Properties.ts"
import { TenantDb } from "./services/TenantDb.ts"
import { Enrichment } from "./services/Enrichment.ts"
import { EventWriter } from "./streams/EventWriter.ts"
import { IngestPipeline } from "./streams/IngestPipeline.ts"
import { VisitorActors } from "./streams/VisitorActors.ts"
import { ChallengeVerifier } from "./services/ChallengeVerifier.ts"
import { Leads } from "./services/Leads.ts"
import { RateLimiter } from "./services/RateLimiter.ts"
import { Erasure } from "./services/Erasure.ts"
import { Unsubscribe } from "./services/Unsubscribe.ts"
import { UnsubscribeTokens } from "./services/UnsubscribeTokens.ts"
import { ConsentExpiry } from "./services/ConsentExpiry.ts"
import { LiveDays } from "./services/LiveDays.ts"
import { Metrics } from "./services/Metrics.ts"
import { Rollup } from "./jobs/Rollup.ts"
import { Scheduler } from "./jobs/Scheduler.ts"

const Lifecycle = Layer.effectDiscard(Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const database = yield* Database
  const address = HttpServer.formatAddress(server.address)
  yield* Effect.logInfo("service started").pipe(Effect.annotateLogs({ address, databaseKind: database.kind }))
  printKeys((yield* Bootstrap).generatedKeys)
  yield* Effect.addFinalizer(() => Effect.andThen(Effect.logInfo("service stopping"), startDraining))
}).pipe(Effect.annotateLogs("service", "main")))

export const appLayer = (settings: AppSettings) => {
  const ConfigLive = AppConfig.layerWith(settings)
  const DatabaseLive = Database.layer.pipe(Layer.provide(ConfigLive))
  const Infrastructure = Layer.mergeAll(ConfigLive, DatabaseLive, SqlLive.pipe(Layer.provide([DatabaseLive, ConfigLive])))
  const Ingest = IngestPipeline.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(VisitorActors.layer, EventWriter.layer)),
    Layer.provideMerge(Enrichment.layer)
  )
  const Services = Layer.mergeAll(
    ApiKeys.layer,
    Properties.layer,
    Leads.layer,
    RateLimiter.layer,
    ChallengeVerifier.layerDisabled,
    Unsubscribe.layer.pipe(Layer.provideMerge(UnsubscribeTokens.layer)),
    Erasure.layer,
    Metrics.layer,
    LiveDays.layer.pipe(Layer.provide(Rollup.layer)),
    Scheduler.layer.pipe(Layer.provide([ConsentExpiry.layer, Rollup.layer])),
    Ingest
  ).pipe(Layer.provideMerge(TenantDb.layer))
  return Lifecycle.pipe(
    Layer.provideMerge(HttpLive),
    Layer.provide(Services),
    Layer.provide(Bootstrap.layer),
    Layer.provideMerge(Infrastructure)
  )
}

export const loggingLayer = (settings: AppSettings) => layerLogger(settings.logLevel)
