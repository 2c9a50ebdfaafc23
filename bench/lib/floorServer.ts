/**
 * The floor for the ingest benchmark: a bare `node:http` server that reads
 * each request body and responds with 202 and a body of the size the ingest
 * endpoint sends, and does nothing else. It listens on 127.0.0.1 on a free
 * port and prints `{"port": N}` on stdout once it listens.
 */
import * as Http from "node:http"

const RESPONSE_BODY = JSON.stringify({ accepted: 1, rejected: 0 })

// The same keep-alive timeout as the service's server.
const server = Http.createServer({ keepAliveTimeout: 65_000 }, (request, response) => {
  request.on("data", () => {})
  request.on("end", () => {
    response.writeHead(202, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(RESPONSE_BODY))
    })
    response.end(RESPONSE_BODY)
  })
})

server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  process.stdout.write(`${JSON.stringify({ port })}\n`)
})

const stop = () => server.close(() => process.exit(0))
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
