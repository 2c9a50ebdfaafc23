/**
 * Turns a handler's failures into responses. An `ApiError` becomes its
 * localised envelope. Anything else is logged with a request id and becomes
 * a 500 envelope that shows no internals.
 */
import { Cause, Effect } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { randomUUID } from "node:crypto"
import { ApiError, errorResponse, languageOf } from "./ApiError.ts"

export const handleFailures = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R | HttpServerRequest.HttpServerRequest> =>
  Effect.catchCause(app, (cause) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const language = languageOf(request)
      const failure = cause.reasons.find((reason) => reason._tag === "Fail")
      if (failure !== undefined && failure.error instanceof ApiError) {
        return errorResponse(failure.error, language)
      }
      if (Cause.hasInterruptsOnly(cause)) {
        return HttpServerResponse.empty({ status: 499 })
      }
      const requestId = request.headers["x-request-id"]?.slice(0, 64) ?? randomUUID()
      yield* Effect.logError("request failed", cause).pipe(
        Effect.annotateLogs({ requestId, method: request.method, path: request.url.split("?")[0] }),
        Effect.annotateLogs("service", "http")
      )
      return HttpServerResponse.setHeader(
        errorResponse(new ApiError({ status: 500, code: "internal_error" }), language),
        "x-request-id",
        requestId
      )
    })
  )
