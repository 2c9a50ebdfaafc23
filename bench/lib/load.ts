/**
 * A closed-loop HTTP load generator: each of `connections` workers sends one
 * POST, waits for the whole response and sends the next, over a keep-alive
 * agent with one socket per worker. Node's HTTP client never pipelines, so
 * each socket carries one request at a time. A worker stops sending at the
 * deadline and finishes the request it has in flight, so a run takes at
 * most its duration plus one request timeout.
 */
import * as Http from "node:http"
import type { Socket } from "node:net"
import { performance } from "node:perf_hooks"
import type { PlannedRequest } from "./corpus.ts"

export interface LoadOptions {
  readonly port: number
  readonly path: string
  readonly connections: number
  readonly durationMs: number
  readonly requestTimeoutMs: number
  /** Headers sent with every request, besides the body's own. */
  readonly headers: Readonly<Record<string, string>>
  readonly nextRequest: (worker: number) => PlannedRequest
  /** Reads `accepted` and `rejected` from each 202 body, as the ingest endpoint returns them. */
  readonly readCounts: boolean
  /** Receives the event ids of every request accepted with 202. */
  readonly onAccepted?: (eventIds: ReadonlyArray<string>) => void
}

export interface LoadResult {
  readonly elapsedMs: number
  readonly requests: number
  readonly accepted202: number
  /** Events in requests accepted with 202 (from the body's `accepted` when `readCounts`). */
  readonly acceptedEvents: number
  /** Events a 202 body listed as rejected. */
  readonly rejectedEvents: number
  /** Count per failure: status and error code, or the network error. */
  readonly failures: ReadonlyMap<string, number>
  /** Latency of every request in milliseconds, in completion order. */
  readonly latenciesMs: Float64Array
  readonly bodyBytes: number
  readonly minBodyBytes: number
  readonly maxBodyBytes: number
  /** Distinct sockets the agent opened: equal to `connections` when keep-alive held. */
  readonly socketsOpened: number
}

interface Response {
  readonly status: number
  readonly body: string
}

/** Runs the load for `durationMs` and returns the counts and latencies. */
export const runLoad = async (options: LoadOptions): Promise<LoadResult> => {
  const agent = new Http.Agent({
    keepAlive: true,
    maxSockets: options.connections,
    maxFreeSockets: options.connections,
    scheduling: "fifo"
  })
  const sockets = new Set<Socket>()
  const latencies: Array<number> = []
  const failures = new Map<string, number>()
  let requests = 0
  let accepted202 = 0
  let acceptedEvents = 0
  let rejectedEvents = 0
  let bodyBytes = 0
  let minBodyBytes = Number.POSITIVE_INFINITY
  let maxBodyBytes = 0

  const countFailure = (key: string) => failures.set(key, (failures.get(key) ?? 0) + 1)

  const send = (planned: PlannedRequest) =>
    new Promise<Response>((resolve, reject) => {
      const bytes = Buffer.from(planned.body, "utf8")
      bodyBytes += bytes.length
      minBodyBytes = Math.min(minBodyBytes, bytes.length)
      maxBodyBytes = Math.max(maxBodyBytes, bytes.length)
      const request = Http.request({
        agent,
        host: "127.0.0.1",
        port: options.port,
        method: "POST",
        path: options.path,
        timeout: options.requestTimeoutMs,
        headers: {
          ...options.headers,
          "content-type": "text/plain;charset=UTF-8",
          "content-length": String(bytes.length),
          "user-agent": planned.userAgent,
          "fly-client-ip": planned.clientIp
        }
      }, (response) => {
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }))
        response.on("error", reject)
      })
      request.on("socket", (socket) => sockets.add(socket))
      request.on("timeout", () => request.destroy(new Error(`timed out after ${options.requestTimeoutMs} ms`)))
      request.on("error", reject)
      request.end(bytes)
    })

  const record = (planned: PlannedRequest, response: Response) => {
    if (response.status !== 202) {
      countFailure(`${response.status} ${errorCode(response.body)}`)
      return
    }
    accepted202++
    if (!options.readCounts) {
      acceptedEvents += planned.eventIds.length
      options.onAccepted?.(planned.eventIds)
      return
    }
    const counts = acceptedCounts(response.body)
    if (counts === undefined) {
      countFailure(`202 with an invalid body: ${JSON.stringify(response.body.slice(0, 80))}`)
      return
    }
    acceptedEvents += counts.accepted
    rejectedEvents += counts.rejected
    // Without rejections the body's count is the request's events, all stored.
    if (counts.rejected === 0 && counts.accepted === planned.eventIds.length) options.onAccepted?.(planned.eventIds)
    else countFailure(`202 with ${counts.rejected} rejected of ${planned.eventIds.length}`)
  }

  const worker = async (index: number, deadline: number) => {
    while (performance.now() < deadline) {
      const planned = options.nextRequest(index)
      const started = performance.now()
      requests++
      let response: Response | undefined
      try {
        response = await send(planned)
      } catch (error) {
        countFailure(`network error: ${error instanceof Error ? error.message : String(error)}`)
      }
      latencies.push(performance.now() - started)
      if (response !== undefined) record(planned, response)
    }
  }

  const started = performance.now()
  const deadline = started + options.durationMs
  await Promise.all(Array.from({ length: options.connections }, (_, index) => worker(index, deadline)))
  const elapsedMs = performance.now() - started
  agent.destroy()
  return {
    elapsedMs,
    requests,
    accepted202,
    acceptedEvents,
    rejectedEvents,
    failures,
    latenciesMs: Float64Array.from(latencies),
    bodyBytes,
    minBodyBytes,
    maxBodyBytes,
    socketsOpened: sockets.size
  }
}

/** Returns the `error.code` of an error envelope, or a short sample of a body that is not one. */
const errorCode = (body: string): string => {
  try {
    const parsed: unknown = JSON.parse(body)
    if (typeof parsed === "object" && parsed !== null && "error" in parsed &&
      typeof parsed.error === "object" && parsed.error !== null && "code" in parsed.error &&
      typeof parsed.error.code === "string") {
      return parsed.error.code
    }
  } catch {
    // Not JSON: fall through to the sample.
  }
  return JSON.stringify(body.slice(0, 80))
}

/** Returns the counts of a 202 body `{"accepted", "rejected"}`, or undefined for any other body. */
const acceptedCounts = (body: string): { accepted: number; rejected: number } | undefined => {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return undefined
  }
  if (typeof parsed === "object" && parsed !== null && "accepted" in parsed && typeof parsed.accepted === "number" &&
    "rejected" in parsed && typeof parsed.rejected === "number") {
    return { accepted: parsed.accepted, rejected: parsed.rejected }
  }
  return undefined
}
