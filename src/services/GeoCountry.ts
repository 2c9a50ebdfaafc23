/**
 * IP address to country lookup over MaxMind DB (`.mmdb`) files.
 *
 * Two record shapes are supported, chosen from the database's `databaseType`
 * metadata when the file is opened:
 * - MaxMind GeoIP2 and GeoLite2 Country, City and Enterprise databases, read
 *   with `@maxmind/geoip2-node`. The country is `country.iso_code`, the
 *   country where the address is used. Records that carry only a
 *   `registered_country` return null.
 * - ip-location-db country databases (`databaseType` "country ipv4", "country
 *   ipv6" or "country ipvAll"), whose records are `{ country_code: "US" }`,
 *   read with the `maxmind` package.
 *
 * Measured throughput of the returned lookup, single thread, Node 24.21 on a
 * 2-core AMD EPYC VM, 200,000 lookups after 20,000 warm-up calls, two runs:
 * - shipped ip-location-db database, random public IPv4: 440k-530k/s;
 *   random addresses in 2a00::/12: 240k-370k/s;
 * - MaxMind GeoIP2-Country test database, addresses in the file: about 43k/s;
 * - MaxMind GeoIP2-City test database, addresses in the file: about 27k/s;
 * - either MaxMind test database, addresses not in the file: about 160k/s.
 * Most of the MaxMind time goes to `@maxmind/geoip2-node` decoding the whole
 * record and converting every key to camelCase on each call. Real GeoLite2
 * records are of similar size, so expect the same order of magnitude.
 */
import { readFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { BlockList, isIP } from "node:net"

import { AddressNotFoundError, Reader as GeoIp2Reader, type ReaderModel } from "@maxmind/geoip2-node"
import { Reader as MmdbReader, type Response as MmdbResponse } from "maxmind"

/** Returns the ISO 3166-1 alpha-2 country code for an IP address, or null. */
export type CountryLookup = (ip: string) => string | null

/**
 * Path of the free country database shipped in the
 * `@ip-location-db/geo-whois-asn-country-mmdb` npm package (IPv4 and IPv6 in
 * one file), so that a new install resolves countries without a download.
 *
 * NOTE: the package is marked CC0-1.0, but its README states that the WHOIS
 * and ASN data come from the NRO under CC BY 4.0, which requires attribution
 * to nro.net. The README also warns that the data published to npm has known
 * errors (this file maps 192.168.1.1 to AU, which the special-purpose filter
 * below hides) and that npm updates will stop. Prefer a MaxMind database in
 * production.
 */
export const DEFAULT_COUNTRY_DATABASE_PATH: string = createRequire(import.meta.url).resolve(
  "@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb"
)

/**
 * Special-purpose ranges from the IANA IPv4 and IPv6 Special-Purpose Address
 * registries (RFC 6890 and later) that belong to no country: private,
 * shared (CGNAT), loopback, link-local, documentation, benchmarking,
 * multicast and reserved space. Addresses here return null without a lookup.
 */
const SPECIAL_PURPOSE_RANGES: ReadonlyArray<readonly [network: string, prefix: number, family: "ipv4" | "ipv6"]> = [
  ["0.0.0.0", 8, "ipv4"],
  ["10.0.0.0", 8, "ipv4"],
  ["100.64.0.0", 10, "ipv4"],
  ["127.0.0.0", 8, "ipv4"],
  ["169.254.0.0", 16, "ipv4"],
  ["172.16.0.0", 12, "ipv4"],
  ["192.0.0.0", 24, "ipv4"],
  ["192.0.2.0", 24, "ipv4"],
  ["192.168.0.0", 16, "ipv4"],
  ["198.18.0.0", 15, "ipv4"],
  ["198.51.100.0", 24, "ipv4"],
  ["203.0.113.0", 24, "ipv4"],
  ["224.0.0.0", 4, "ipv4"],
  ["240.0.0.0", 4, "ipv4"],
  ["::", 128, "ipv6"],
  ["::1", 128, "ipv6"],
  ["100::", 64, "ipv6"],
  ["2001:db8::", 32, "ipv6"],
  ["fc00::", 7, "ipv6"],
  ["fe80::", 10, "ipv6"],
  ["fec0::", 10, "ipv6"],
  ["ff00::", 8, "ipv6"]
]

const specialPurposeAddresses = new BlockList()
for (const [network, prefix, family] of SPECIAL_PURPOSE_RANGES) {
  specialPurposeAddresses.addSubnet(network, prefix, family)
}

/**
 * Matches the WHATWG URL serialisation of an IPv6 address whose first 96 bits
 * are `::ffff:0:0` (IPv4-mapped) or all zero (the deprecated IPv4-compatible
 * form, which is also where MaxMind DB files store IPv4 data). The two
 * captured groups are the embedded IPv4 address.
 */
const EMBEDDED_IPV4 = /^::(?:ffff:)?([0-9a-f]{1,4}):([0-9a-f]{1,4})$/

interface LookupAddress {
  readonly address: string
  readonly family: "ipv4" | "ipv6"
}

/**
 * Validates an IP string and rewrites an IPv6 address with an embedded IPv4
 * address to the IPv4 form. Returns null for invalid strings and for scoped
 * IPv6 addresses (with a `%zone` suffix), which are link-local by definition.
 */
function toLookupAddress(ip: string): LookupAddress | null {
  const family = isIP(ip)
  if (family === 4) {
    return { address: ip, family: "ipv4" }
  }
  if (family !== 6 || ip.includes("%")) {
    return null
  }

  // The URL host serialiser prints IPv6 in one canonical, lower-case,
  // compressed form, which makes the embedded-IPv4 check a single pattern.
  const canonical = URL.parse(`http://[${ip}]`)?.hostname.slice(1, -1)
  if (canonical === undefined) {
    return null
  }
  const embedded = EMBEDDED_IPV4.exec(canonical)
  if (embedded === null) {
    return { address: canonical, family: "ipv6" }
  }
  const high = Number.parseInt(embedded[1] ?? "0", 16)
  const low = Number.parseInt(embedded[2] ?? "0", 16)
  const octets = [high >> 8, high & 0xff, low >> 8, low & 0xff]
  return { address: octets.join("."), family: "ipv4" }
}

const ISO_ALPHA2 = /^[A-Z]{2}$/

function toCountryCode(value: unknown): string | null {
  return typeof value === "string" && ISO_ALPHA2.test(value) ? value : null
}

/** Reads the country from one address that has already been validated. */
type RecordReader = (address: string) => string | null

function geoIp2RecordReader(model: ReaderModel, databaseType: string): RecordReader {
  // `@maxmind/geoip2-node` only lets each method read databases whose type
  // contains the matching word, so pick the method the same way.
  let readCountry: (address: string) => string | undefined
  if (databaseType.includes("Enterprise")) {
    readCountry = (address) => model.enterprise(address).country?.isoCode
  } else if (databaseType.includes("City")) {
    readCountry = (address) => model.city(address).country?.isoCode
  } else {
    readCountry = (address) => model.country(address).country?.isoCode
  }

  return (address) => {
    try {
      return toCountryCode(readCountry(address))
    } catch (error) {
      if (error instanceof AddressNotFoundError) {
        return null
      }
      throw error
    }
  }
}

function ipLocationDbRecordReader(reader: MmdbReader<MmdbResponse>): RecordReader {
  return (address) => {
    const record = reader.get(address)
    if (record === null || !("country_code" in record)) {
      return null
    }
    return toCountryCode(record.country_code)
  }
}

function isGeoIp2Type(databaseType: string): boolean {
  return ["Country", "City", "Enterprise"].some((word) => databaseType.includes(word))
}

function isIpLocationDbType(databaseType: string): boolean {
  return /^country ipv(?:4|6|All)$/.test(databaseType)
}

/**
 * Opens a country-capable `.mmdb` file and returns its lookup function.
 *
 * The lookup returns null for invalid IP strings, special-purpose addresses
 * (private, loopback, link-local and the like) and addresses the database
 * does not cover. It throws only if decoding a record fails, which means the
 * file is corrupt.
 *
 * Rejects when the file cannot be read, is not a MaxMind DB file, or has a
 * `databaseType` that neither supported reader understands.
 */
export async function openCountryDatabase(path: string): Promise<CountryLookup> {
  const buffer = await readFile(path)

  let reader: MmdbReader<MmdbResponse>
  try {
    reader = new MmdbReader<MmdbResponse>(buffer)
  } catch (error) {
    throw new Error(`Failed to open GeoIP database ${path}: not a valid MaxMind DB file`, { cause: error })
  }

  // The reader walks an IPv6 address's first 32 bits through an IPv4-only
  // tree and returns whatever IPv4 record it reaches, so skip such lookups.
  const ipv4Only = reader.metadata.ipVersion === 4
  const databaseType = reader.metadata.databaseType
  let readRecord: RecordReader
  if (isGeoIp2Type(databaseType)) {
    readRecord = geoIp2RecordReader(GeoIp2Reader.openBuffer(buffer), databaseType)
  } else if (isIpLocationDbType(databaseType)) {
    readRecord = ipLocationDbRecordReader(reader)
  } else {
    throw new Error(
      `Unsupported GeoIP database type "${databaseType}" in ${path}: expected a GeoIP2 or GeoLite2 ` +
        `Country, City or Enterprise database, or an ip-location-db country database`
    )
  }

  return (ip) => {
    const lookupAddress = toLookupAddress(ip)
    if (lookupAddress === null) {
      return null
    }
    if (ipv4Only && lookupAddress.family === "ipv6") {
      return null
    }
    if (specialPurposeAddresses.check(lookupAddress.address, lookupAddress.family)) {
      return null
    }
    return readRecord(lookupAddress.address)
  }
}
