/**
 * A closed-loop HTTP load generator for lead captures: each of
 * `connections` workers posts one JSON body, waits for the whole response
 * and posts the next, over a keep-alive agent with one socket per worker.
 * Node's HTTP client never pipelines, so each socket carries one request at
 * a time. A worker stops sending at the deadline and finishes the request it
 * has in flight, so a run takes at most its duration plus one request
 * timeout.
 */
import * as Http from "node:http"
import type { Socket } from "node:net"
import { performance } from "node:perf_hooks"
import type { PlannedLead } from "./leadTraffic.ts"

export interface LeadLoadOptions {
  readonly port: number
  readonly connections: number
  readonly durationMs: number
  readonly requestTimeoutMs: number
  /** Headers sent with every request, besides the body's own. */
  readonly headers: Readonly<Record<string, string>>
  readonly nextLead: () => PlannedLead
  /** Receives every lead acknowledged with 201 or 200. */
  readonly onAcknowledged: (lead: PlannedLead) => void
}

export interface LeadLoadResult {
  readonly elapsedMs: number
  readonly requests: number
  readonly created201: number
  readonly known200: number
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

const CAPTURE_PATH = "/v1/leads/capture"

/** Runs the load for `durationMs` and returns the counts and latencies. */
export const runLeadLoad = async (options: LeadLoadOptions): Promise<LeadLoadResult> => {
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
  let created201 = 0
  let known200 = 0
  let bodyBytes = 0
  let minBodyBytes = Number.POSITIVE_INFINITY
  let maxBodyBytes = 0

  const countFailure = (key: string) => failures.set(key, (failures.get(key) ?? 0) + 1)

  const send = (lead: PlannedLead) =>
    new Promise<Response>((resolve, reject) => {
      const bytes = Buffer.from(lead.body, "utf8")
      bodyBytes += bytes.length
      minBodyBytes = Math.min(minBodyBytes, bytes.length)
      maxBodyBytes = Math.max(maxBodyBytes, bytes.length)
      const request = Http.request({
        agent,
        host: "127.0.0.1",
        port: options.port,
        method: "POST",
        path: CAPTURE_PATH,
        timeout: options.requestTimeoutMs,
        headers: {
          ...options.headers,
          "content-type": "application/json",
          "content-length": String(bytes.length),
          "user-agent": lead.userAgent,
          "fly-client-ip": lead.clientIp
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

  const record = (lead: PlannedLead, response: Response) => {
    if (response.status === 201) created201++
    else if (response.status === 200) known200++
    else {
      countFailure(`${response.status} ${errorCode(response.body)}`)
      return
    }
    options.onAcknowledged(lead)
  }

  const worker = async (deadline: number) => {
    while (performance.now() < deadline) {
      const lead = options.nextLead()
      const started = performance.now()
      requests++
      let response: Response | undefined
      try {
        response = await send(lead)
      } catch (error) {
        countFailure(`network error: ${error instanceof Error ? error.message : String(error)}`)
      }
      latencies.push(performance.now() - started)
      if (response !== undefined) record(lead, response)
    }
  }

  const started = performance.now()
  const deadline = started + options.durationMs
  await Promise.all(Array.from({ length: options.connections }, () => worker(deadline)))
  const elapsedMs = performance.now() - started
  agent.destroy()
  return {
    elapsedMs,
    requests,
    created201,
    known200,
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
