/**
 * Reading and decoding request bodies: a size limit enforced with 413, JSON
 * parsed and decoded with a Schema, and every schema issue reported as a
 * field of the error envelope (`path`, `code`, localised `message`).
 */
import { ByteSize, Effect, Schema, SchemaIssue } from "effect"
import { HttpIncomingMessage, HttpServerRequest } from "effect/http"
import { ApiError, type FieldProblem } from "./ApiError.ts"

/** Reads the body as text, refusing more than `maxBytes` with 413. */
export const readBodyText = (maxBytes: number) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const declared = Number(request.headers["content-length"] ?? Number.NaN)
    if (Number.isFinite(declared) && declared > maxBytes) return yield* tooLarge(maxBytes)
    return yield* request.text.pipe(
      Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBytes)),
      Effect.catch((error) => isOverflow(error) ? tooLarge(maxBytes) : Effect.fail(unreadable()))
    )
  })

/** Parses JSON text and decodes it with `schema`; failures are 400 with field problems. */
export const decodeJsonText = <S extends Schema.Constraint>(schema: S, text: string) =>
  Effect.gen(function*() {
    const parsed = parseJson(text)
    if (!parsed.ok) {
      return yield* new ApiError({ status: 400, code: "invalid_json" })
    }
    return yield* decodeValue(schema, parsed.value)
  })

/** Decodes an already-parsed value with `schema`; failures are 400 with field problems. */
export const decodeValue = <S extends Schema.Constraint>(schema: S, value: unknown, pathPrefix = "") =>
  Schema.decodeUnknownEffect(schema, { errors: "all", onExcessProperty: "ignore" })(value).pipe(
    Effect.mapError((error) =>
      new ApiError({ status: 400, code: "invalid_request", fields: issueFields(error.issue, pathPrefix) })
    )
  )

/** Flattens a schema issue into one field problem per leaf, with dotted paths. */
export const issueFields = (issue: SchemaIssue.Issue, prefix = ""): ReadonlyArray<FieldProblem> => {
  const problems: Array<FieldProblem> = []
  const walk = (node: SchemaIssue.Issue, path: ReadonlyArray<PropertyKey>) => {
    switch (node._tag) {
      case "Pointer":
        return walk(node.issue, [...path, ...node.path])
      case "Composite":
      case "AnyOf":
        if (node.issues.length === 0) problems.push(problem(prefix, path, "invalid"))
        for (const child of node.issues) walk(child, path)
        return
      case "Encoding":
        return walk(node.issue, path)
      case "Filter":
        problems.push(problem(prefix, path, "invalid"))
        return
      case "MissingKey":
        problems.push(problem(prefix, path, "missing"))
        return
      case "UnexpectedKey":
        problems.push(problem(prefix, path, "unexpected"))
        return
      case "InvalidType":
        problems.push(problem(prefix, path, "invalid_type"))
        return
      default:
        problems.push(problem(prefix, path, "invalid"))
    }
  }
  walk(issue, [])
  return problems
}

const problem = (prefix: string, path: ReadonlyArray<PropertyKey>, code: string): FieldProblem => {
  let joined = prefix
  for (const segment of path) {
    if (typeof segment === "number") joined = `${joined}[${segment}]`
    else if (joined === "") joined = String(segment)
    else joined = `${joined}.${String(segment)}`
  }
  return { path: joined === "" ? "(body)" : joined, code }
}

const parseJson = (text: string): { ok: true; value: unknown } | { ok: false } => {
  try {
    const value: unknown = JSON.parse(text)
    return { ok: true, value }
  } catch {
    return { ok: false }
  }
}

const isOverflow = (error: unknown): boolean => {
  for (let current: unknown = error, depth = 0; current !== null && typeof current === "object" && depth < 5; depth++) {
    if ("_tag" in current && current._tag === "MaxBytesError") return true
    current = "cause" in current ? current.cause : undefined
  }
  return false
}

const tooLarge = (maxBytes: number) =>
  Effect.fail(new ApiError({ status: 413, code: "payload_too_large", params: { limit: maxBytes } }))

const unreadable = () => new ApiError({ status: 400, code: "unreadable_body" })
