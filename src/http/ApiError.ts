/**
 * The shared error envelope:
 * `{"error": {"code", "message", "fields": [{"path", "code", "message"}]}}`,
 * with messages localised for the request. Handlers fail with `ApiError`;
 * the server middleware turns it into the response.
 */
import { Data, Effect } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { type Language, negotiateLanguage, translate } from "../services/I18n.ts"

export interface FieldProblem {
  readonly path: string
  readonly code: string
  /** Message key in the locale files; defaults to `field.<code>`. */
  readonly messageKey?: string
  readonly params?: Readonly<Record<string, string | number>>
}

export class ApiError extends Data.TaggedError("ApiError")<{
  readonly status: number
  readonly code: string
  readonly params?: Readonly<Record<string, string | number>>
  readonly fields?: ReadonlyArray<FieldProblem>
  readonly headers?: Readonly<Record<string, string>>
}> {}

/** The language of the current request, from `?lang=` then `Accept-Language`. */
export const requestLanguage: Effect.Effect<Language, never, HttpServerRequest.HttpServerRequest> = Effect.map(
  HttpServerRequest.HttpServerRequest,
  (request) => languageOf(request)
)

export const languageOf = (request: HttpServerRequest.HttpServerRequest): Language => {
  const queryStart = request.url.indexOf("?")
  const lang = queryStart === -1 ? undefined : new URLSearchParams(request.url.slice(queryStart + 1)).get("lang")
  return negotiateLanguage(lang ?? undefined, request.headers["accept-language"])
}

/** Renders an `ApiError` as the localised JSON envelope. */
export const errorResponse = (error: ApiError, language: Language): HttpServerResponse.HttpServerResponse => {
  const fields = error.fields?.map((field) => ({
    path: field.path,
    code: field.code,
    message: translate(language, field.messageKey ?? `field.${field.code}`, { path: field.path, ...field.params })
  }))
  const body = {
    error: {
      code: error.code,
      message: translate(language, `error.${error.code}`, error.params),
      ...(fields === undefined ? {} : { fields })
    }
  }
  return HttpServerResponse.jsonUnsafe(body, {
    status: error.status,
    headers: { "content-language": language, vary: "Accept-Language", ...error.headers }
  })
}
