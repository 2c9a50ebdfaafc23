/**
 * The client's address for hashing, the country lookup and rate limits: the
 * socket's, or Fly-Client-IP behind Fly's proxy (TRUST_PROXY=fly). A
 * client-sent X-Forwarded-For is never read.
 */
import type { HttpServerRequest } from "effect/http"
import { isIP } from "node:net"
import type { AppSettings } from "../services/AppConfig.ts"

export const clientAddress = (
  request: HttpServerRequest.HttpServerRequest,
  config: AppSettings
): string | undefined => {
  if (config.trustProxy === "fly") {
    const forwarded = request.headers["fly-client-ip"]?.trim()
    return forwarded !== undefined && isIP(forwarded) !== 0 ? forwarded : undefined
  }
  const socket = request.remoteAddress
  if (socket._tag === "None") return undefined
  return socket.value.startsWith("::ffff:") ? socket.value.slice(7) : socket.value
}
