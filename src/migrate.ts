/**
 * `npm run migrate`: applies pending migrations to the configured database
 * (DATABASE_URL, or the embedded one under DATA_DIR) and exits.
 */
import { Effect, Layer } from "effect"
import { AppConfig, loadSettings } from "./services/AppConfig.ts"
import { Database } from "./services/Database.ts"
import { layerLogger } from "./services/Log.ts"
import { runEntryPoint } from "./Runtime.ts"

const program = Effect.gen(function*() {
  const settings = yield* loadSettings
  yield* Layer.build(Database.layer.pipe(Layer.provide(AppConfig.layerWith(settings)))).pipe(
    Effect.scoped,
    Effect.provide(layerLogger(settings.logLevel))
  )
})

runEntryPoint(program)
