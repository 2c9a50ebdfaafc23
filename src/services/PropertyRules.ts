/**
 * The checks a new property must pass, shared by the admin API and the
 * operator CLI. They are pure: no database, no Effect. The limits match the
 * CHECK constraints of `properties` where the schema has one.
 */

/** Same pattern as the CHECK constraint on `properties.slug`. */
export const SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/

export const MAX_NAME_LENGTH = 200
export const MAX_DOMAINS = 20
export const MAX_DOMAIN_LENGTH = 253
export const MAX_ORIGINS = 20
export const MAX_TIMEZONE_LENGTH = 64
export const MAX_THANK_YOU_URL_LENGTH = 2048

export const DEFAULT_TIMEZONE = "UTC"

/** Problem codes, the same ones the admin API returns in `fields[].code`. */
export type ThankYouUrlProblem = "invalid_url" | "not_on_property_domain"

export const isSlug = (text: string): boolean => SLUG_PATTERN.test(text)

export const isPropertyName = (text: string): boolean => text.length >= 1 && text.length <= MAX_NAME_LENGTH

/**
 * Normalises a domain to a bare host name in lower case and ASCII (punycode).
 * Returns undefined when the text is not a host name with a dot or
 * `localhost`, or carries a scheme, port, path or user.
 */
export const normaliseHost = (text: string): string | undefined => {
  const candidate = text.trim().toLowerCase()
  if (candidate === "" || candidate.length > MAX_DOMAIN_LENGTH || /[/:?#@\s]/.test(candidate)) return undefined
  if (!URL.canParse(`https://${candidate}/`)) return undefined
  const host = new URL(`https://${candidate}/`).hostname
  return host.includes(".") || host === "localhost" ? host : undefined
}

/**
 * Normalises a CORS origin (`https://www.example.com`, or `http://` with an
 * optional port). Returns undefined for anything with a path, query, user or
 * another scheme. One trailing slash is accepted and dropped.
 */
export const normaliseOrigin = (text: string): string | undefined => {
  const candidate = text.trim()
  if (!URL.canParse(candidate)) return undefined
  const url = new URL(candidate)
  if (url.protocol !== "https:" && url.protocol !== "http:") return undefined
  return url.origin === candidate.replace(/\/$/, "").toLowerCase() ? url.origin : undefined
}

/** The default origins of a property: `https://` and each of its domains. */
export const defaultOrigins = (domains: ReadonlyArray<string>): ReadonlyArray<string> =>
  domains.map((domain) => `https://${domain}`)

/** Tests for a time zone name in this Node.js build's ICU data, such as `America/Toronto`. */
export const isTimeZone = (name: string): boolean => {
  if (name === "" || name.length > MAX_TIMEZONE_LENGTH) return false
  try {
    new Intl.DateTimeFormat("en", { timeZone: name })
    return true
  } catch {
    return false
  }
}

/**
 * Checks that the thank-you page is an http(s) URL on one of the property's
 * own domains, so that the form redirect cannot be used as an open redirect.
 * `domains` are normalised host names.
 */
export const thankYouUrlProblem = (
  url: string,
  domains: ReadonlyArray<string | undefined>
): ThankYouUrlProblem | undefined => {
  if (url.length > MAX_THANK_YOU_URL_LENGTH || !URL.canParse(url)) return "invalid_url"
  const parsed = new URL(url)
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return "invalid_url"
  return domains.includes(parsed.hostname) ? undefined : "not_on_property_domain"
}
