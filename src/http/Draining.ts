/**
 * Shutdown support for keep-alive clients. Once the service starts to stop,
 * every response carries `Connection: close`, so a busy keep-alive
 * connection ends after its current request instead of holding the stop
 * until the graceful-shutdown timeout.
 */
import { Effect } from "effect"
import { HttpServerResponse } from "effect/http"

let draining = false

export const startDraining = Effect.sync(() => {
  draining = true
})

export const closeWhenDraining = (response: HttpServerResponse.HttpServerResponse) =>
  draining ? HttpServerResponse.setHeader(response, "connection", "close") : response
