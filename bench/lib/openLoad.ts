/**
 * An open-loop HTTP load generator: requests leave on a fixed schedule,
 * `rate` a second, whether or not earlier responses have arrived. Each
 * request's latency runs from its scheduled send time, so a request that
 * waits for a free socket behind a slow response counts that wait too (no
 * coordinated omission). Sockets are kept alive and never pipelined, and up
 * to `maxSockets` are open at once. Sending stops at the deadline, and the
 * run ends when the last response arrives or times out.
 */
import * as Http from "node:http"
import { performance } from "node:perf_hooks"
import type { PlannedRequest } from "./corpus.ts"

export interface OpenLoadOptions {
  readonly port: number
  readonly path: string
  readonly rate: number
  readonly durationMs: number
  readonly maxSockets: number
  readonly requestTimeoutMs: number
  readonly headers: Readonly<Record<string, string>>
  readonly nextRequest: () => PlannedRequest
}

export interface OpenLoadResult {
  readonly sent: number
  readonly accepted202: number
  readonly failures: number
  /** Latency of every request from its scheduled time, in milliseconds. */
  readonly latenciesMs: Float64Array
  /** Requests that left more than LATE_MS after their scheduled time, because the generator itself fell behind. */
  readonly lateSends: number
  readonly elapsedMs: number
}

const TICK_MS = 1
/** A send this far behind its schedule means the generator itself stalled. */
const LATE_MS = 5

export const runOpenLoad = (options: OpenLoadOptions): Promise<OpenLoadResult> =>
  new Promise((resolve) => {
    const agent = new Http.Agent({ keepAlive: true, maxSockets: options.maxSockets, scheduling: "fifo" })
    const latencies: Array<number> = []
    let sent = 0
    let accepted202 = 0
    let failures = 0
    let lateSends = 0
    let outstanding = 0
    const started = performance.now()
    const total = Math.floor((options.rate * options.durationMs) / 1000)

    const finishIfDone = () => {
      if (sent < total || outstanding > 0) return
      agent.destroy()
      resolve({ sent, accepted202, failures, latenciesMs: Float64Array.from(latencies), lateSends, elapsedMs: performance.now() - started })
    }

    const send = (scheduled: number) => {
      const planned = options.nextRequest()
      const bytes = Buffer.from(planned.body, "utf8")
      if (performance.now() - scheduled > LATE_MS) lateSends++
      outstanding++
      let settled = false
      const settle = (ok: boolean) => {
        if (settled) return
        settled = true
        outstanding--
        latencies.push(performance.now() - scheduled)
        if (ok) accepted202++
        else failures++
        finishIfDone()
      }
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
        response.resume()
        response.on("end", () => settle(response.statusCode === 202))
        response.on("error", () => settle(false))
      })
      request.on("timeout", () => request.destroy(new Error("timed out")))
      request.on("error", () => settle(false))
      request.end(bytes)
    }

    const interval = 1000 / options.rate
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor((performance.now() - started) / interval) + 1)
      while (sent < due) {
        send(started + sent * interval)
        sent++
      }
      if (sent >= total) {
        clearInterval(timer)
        finishIfDone()
      }
    }, TICK_MS)
  })
