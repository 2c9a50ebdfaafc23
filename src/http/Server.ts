/**
 * The HTTP server: the route table, a fallback that responds to unknown paths
 * with 404 and known paths with a wrong method with 405 (both in the error
 * envelope), and a middleware that turns failures into envelopes and logs
 * every unexpected one with a request id.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"
import { AppConfig } from "../services/AppConfig.ts"
import { ApiError } from "./ApiError.ts"
import { closeWhenDraining } from "./Draining.ts"
import { handleFailures } from "./Failures.ts"
import { makeHealthHandler } from "./Health.ts"
import { createProperty, listProperties } from "./AdminProperties.ts"
import { preflight } from "./Cors.ts"
import { postEvents } from "./Events.ts"
import { captureLead, thanksPage } from "./Leads.ts"
import { deleteLead, exportLead } from "./LeadsAdmin.ts"
import { postUnsubscribe, showUnsubscribePage } from "./Unsubscribe.ts"
import { listJobRuns, runJob } from "./Jobs.ts"
import { breakdown, leadsBySource, realtime, series, summary, webVitals } from "./Metrics.ts"
import { makeStaticSite } from "./StaticSite.ts"

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS"

/** Every route the service serves, by path, for the 405 answer's Allow header. */
const ROUTE_TABLE: ReadonlyArray<{ readonly method: Method; readonly path: string }> = [
  { method: "GET", path: "/v1/healthz" },
  { method: "POST", path: "/v1/events" },
  { method: "OPTIONS", path: "/v1/events" },
  { method: "POST", path: "/v1/leads/capture" },
  { method: "OPTIONS", path: "/v1/leads/capture" },
  { method: "GET", path: "/v1/leads/thanks" },
  { method: "GET", path: "/v1/leads/unsubscribe" },
  { method: "POST", path: "/v1/leads/unsubscribe" },
  { method: "POST", path: "/v1/leads/delete" },
  { method: "GET", path: "/v1/leads/export" },
  { method: "GET", path: "/v1/admin/properties" },
  { method: "POST", path: "/v1/admin/properties" },
  { method: "POST", path: "/v1/admin/jobs/:name/run" },
  { method: "GET", path: "/v1/admin/jobs/runs" },
  { method: "GET", path: "/v1/metrics/summary" },
  { method: "GET", path: "/v1/metrics/breakdown" },
  { method: "GET", path: "/v1/metrics/series" },
  { method: "GET", path: "/v1/metrics/leads" },
  { method: "GET", path: "/v1/metrics/web-vitals" },
  { method: "GET", path: "/v1/metrics/realtime" }
]

/**
 * Registers a route whose failures become error envelopes inside the
 * handler: the router sends a plain 500 for any failure that leaves it.
 */
const route = <E, R>(
  method: Method | "*",
  path: HttpRouter.PathInput,
  handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
) => HttpRouter.add(method, path, Effect.map(handleFailures(handler), closeWhenDraining))

const HealthRoute = Layer.unwrap(Effect.map(makeHealthHandler, (handler) => route("GET", "/v1/healthz", handler)))

const SiteRoutes = Layer.unwrap(Effect.map(makeStaticSite, ({ handler, paths }) =>
  Layer.mergeAll(route("GET", "/", handler), ...paths.filter((path) => path !== "/").map((path) =>
    route("GET", toPathInput(path), handler)))))

const toPathInput = (path: string): HttpRouter.PathInput => path.startsWith("/") ? `/${path.slice(1)}` : `/${path}`

const IngestRoutes = Layer.mergeAll(
  route("POST", "/v1/events", postEvents),
  route("OPTIONS", "/v1/events", preflight)
)

const LeadRoutes = Layer.mergeAll(
  route("POST", "/v1/leads/capture", captureLead),
  route("OPTIONS", "/v1/leads/capture", preflight),
  route("GET", "/v1/leads/thanks", thanksPage)
)

const PrivacyRoutes = Layer.mergeAll(
  route("GET", "/v1/leads/unsubscribe", showUnsubscribePage),
  route("POST", "/v1/leads/unsubscribe", postUnsubscribe),
  route("POST", "/v1/leads/delete", deleteLead),
  route("GET", "/v1/leads/export", exportLead)
)

const AdminRoutes = Layer.mergeAll(
  route("GET", "/v1/admin/properties", listProperties),
  route("POST", "/v1/admin/properties", createProperty),
  route("POST", "/v1/admin/jobs/:name/run", runJob),
  route("GET", "/v1/admin/jobs/runs", listJobRuns)
)

const MetricsRoutes = Layer.mergeAll(
  route("GET", "/v1/metrics/summary", summary),
  route("GET", "/v1/metrics/breakdown", breakdown),
  route("GET", "/v1/metrics/series", series),
  route("GET", "/v1/metrics/leads", leadsBySource),
  route("GET", "/v1/metrics/web-vitals", webVitals),
  route("GET", "/v1/metrics/realtime", realtime)
)

const fallback = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const path = request.url.split("?")[0] ?? "/"
  const allowed = allowedMethods(path)
  if (allowed.length === 0) {
    return yield* new ApiError({ status: 404, code: "not_found", params: { path: truncate(path) } })
  }
  return yield* new ApiError({
    status: 405,
    code: "method_not_allowed",
    params: { method: truncate(request.method), path: truncate(path), allowed: allowed.join(", ") },
    headers: { allow: allowed.join(", ") }
  })
})

const FallbackRoute = route("*", "/*", fallback)

const allowedMethods = (path: string): ReadonlyArray<Method> => {
  // Match as the router does: letter case and repeated slashes do not count.
  const normalised = path.toLowerCase().replace(/\/{2,}/g, "/")
  return ROUTE_TABLE.filter((route) => routePattern(route.path).test(normalised)).map((route) => route.method)
}

const routePattern = (path: string) => new RegExp(`^${path.replace(/:[A-Za-z]+/g, "[^/]+")}/?$`, "i")

const truncate = (text: string) => text.length > 200 ? `${text.slice(0, 200)}…` : text

const Routes = Layer.mergeAll(
  HealthRoute,
  IngestRoutes,
  LeadRoutes,
  PrivacyRoutes,
  AdminRoutes,
  MetricsRoutes,
  SiteRoutes,
  FallbackRoute
)

/** The server on HOST:PORT; closing its scope stops accepting and drains in-flight requests. */
export const HttpLive = Layer.unwrap(
  Effect.gen(function*() {
    const config = yield* AppConfig
    return HttpRouter.serve(Routes, {
      disableLogger: true,
      disableListenLog: true
    }).pipe(
      Layer.provideMerge(NodeHttpServer.layer(() => createServer({ keepAliveTimeout: 65_000 }), {
        host: config.host,
        port: config.port,
        gracefulShutdownTimeout: "10 seconds"
      }))
    )
  })
)
