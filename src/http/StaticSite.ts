/**
 * Serves the example marketing site in `static/dist/` at `/`, from memory.
 * Its pages carry the placeholder key `pk_demo_replace_me`, replaced here by
 * the bootstrap property's ingest key: INGEST_API_KEY when set, else the key
 * the embedded mode generated and kept under DATA_DIR.
 */
import { Effect, Option, Redacted } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { AppConfig } from "../services/AppConfig.ts"
import { DEMO_INGEST_KEY_FILE } from "../services/Bootstrap.ts"
import { ApiError } from "./ApiError.ts"

const SITE_DIR = fileURLToPath(new URL("../../static/dist", import.meta.url))
const PLACEHOLDER_KEY = "pk_demo_replace_me"

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".LICENSE": "text/plain; charset=utf-8"
}

interface StaticFile {
  readonly body: Uint8Array
  readonly contentType: string
  readonly etag: string
}

/** Loads the site once; returns its URL paths and the GET handler that serves them. */
export const makeStaticSite = Effect.gen(function*() {
  const config = yield* AppConfig
  const ingestKey = Option.match(config.ingestApiKey, {
    onSome: Redacted.value,
    onNone: () => readDemoKey(config.dataDir)
  })
  const files = loadSite(ingestKey)
  yield* Effect.logInfo("example site loaded").pipe(
    Effect.annotateLogs({ service: "static-site", files: files.size, keyConfigured: ingestKey !== undefined })
  )

  const handler = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const path = request.url.split("?")[0] ?? "/"
    const file = files.get(path === "/" ? "/index.html" : path) ?? files.get(`${path}.html`)
    if (file === undefined) return yield* new ApiError({ status: 404, code: "not_found", params: { path } })
    if (request.headers["if-none-match"] === file.etag) return HttpServerResponse.empty({ status: 304 })
    return HttpServerResponse.uint8Array(file.body, {
      contentType: file.contentType,
      headers: { etag: file.etag, "cache-control": "no-cache" }
    })
  })
  const pages = [...files.keys()].filter((path) => path.endsWith(".html")).map((path) => path.slice(0, -5))
  const paths = ["/", ...files.keys(), ...pages.filter((path) => path !== "/index")]
  return { paths, handler }
})

const readDemoKey = (dataDir: string): string | undefined => {
  const file = Path.join(dataDir, DEMO_INGEST_KEY_FILE)
  return Fs.existsSync(file) ? Fs.readFileSync(file, "utf8").trim() : undefined
}

const loadSite = (ingestKey: string | undefined): ReadonlyMap<string, StaticFile> => {
  const files = new Map<string, StaticFile>()
  if (!Fs.existsSync(SITE_DIR)) return files
  for (const entry of Fs.readdirSync(SITE_DIR, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const full = Path.join(entry.parentPath, entry.name)
    const urlPath = `/${Path.relative(SITE_DIR, full).split(Path.sep).join("/")}`
    const extension = Path.extname(entry.name) || entry.name.slice(entry.name.lastIndexOf("."))
    let body: Uint8Array = Fs.readFileSync(full)
    if (extension === ".html" && ingestKey !== undefined) {
      body = Buffer.from(Fs.readFileSync(full, "utf8").replaceAll(PLACEHOLDER_KEY, ingestKey))
    }
    files.set(urlPath, {
      body,
      contentType: CONTENT_TYPES[extension] ?? "application/octet-stream",
      etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`
    })
  }
  return files
}
