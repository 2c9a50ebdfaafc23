import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

import { beforeAll, describe, expect, it } from "vitest"

import { type CountryLookup, DEFAULT_COUNTRY_DATABASE_PATH, openCountryDatabase } from "../src/services/GeoCountry.ts"

const TESTDATA_DIR = new URL("../../shared/testdata/", import.meta.url)

interface CountryVector {
  readonly ip: string
  readonly db: string
  readonly expectedCountry: string | null
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

function isJsonObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value)
}

function readCountryVectors(): CountryVector[] {
  const file = "geoip_maxmind_test_dbs.json"
  const parsed: Json = JSON.parse(readFileSync(new URL(file, TESTDATA_DIR), "utf8"))
  const vectors = isJsonObject(parsed) ? parsed["vectors"] : undefined
  if (!Array.isArray(vectors)) {
    throw new Error(`${file}: expected an object with a "vectors" array`)
  }
  return vectors.map((vector) => {
    const ip = isJsonObject(vector) ? vector["ip"] : undefined
    const db = isJsonObject(vector) ? vector["db"] : undefined
    const expectedCountry = isJsonObject(vector) ? vector["expected_country_iso"] : undefined
    if (typeof ip !== "string" || typeof db !== "string" || !(typeof expectedCountry === "string" || expectedCountry === null)) {
      throw new Error(`${file}: malformed vector ${JSON.stringify(vector)}`)
    }
    return { ip, db, expectedCountry }
  })
}

const vectors = readCountryVectors()
const databaseFiles = [...new Set(vectors.map((vector) => vector.db))].sort()

function databasePath(db: string): string {
  return fileURLToPath(new URL(db, TESTDATA_DIR))
}

describe("openCountryDatabase with MaxMind test databases", () => {
  const lookups = new Map<string, CountryLookup>()

  beforeAll(async () => {
    for (const db of databaseFiles) {
      lookups.set(db, await openCountryDatabase(databasePath(db)))
    }
  })

  function lookupFor(db: string): CountryLookup {
    const lookup = lookups.get(db)
    if (lookup === undefined) {
      throw new Error(`${db} was not opened`)
    }
    return lookup
  }

  it("covers four test databases", () => {
    expect(databaseFiles).toHaveLength(4)
  })

  it.each(databaseFiles)("agrees with every vector for %s", (db) => {
    const dbVectors = vectors.filter((vector) => vector.db === db)
    const lookup = lookupFor(db)
    const misses = dbVectors
      .map(({ ip, expectedCountry }) => ({ ip, expected: expectedCountry, actual: lookup(ip) }))
      .filter(({ expected, actual }) => expected !== actual)

    console.info(`${db}: ${dbVectors.length - misses.length}/${dbVectors.length} agree`)

    expect(dbVectors.length).toBeGreaterThan(0)
    expect(misses).toEqual([])
  })

  // Every IPv4 vector again, written as an IPv4-mapped IPv6 address in both
  // the dotted and the hexadecimal form.
  it.each(databaseFiles)("looks up IPv4-mapped addresses as IPv4 in %s", (db) => {
    const lookup = lookupFor(db)
    const ipv4Vectors = vectors.filter((vector) => vector.db === db && !vector.ip.includes(":"))
    const misses = ipv4Vectors
      .flatMap(({ ip, expectedCountry }) => {
        const [a = 0, b = 0, c = 0, d = 0] = ip.split(".").map(Number)
        const hex = `::ffff:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
        return [`::ffff:${ip}`, hex].map((mapped) => ({ mapped, expected: expectedCountry, actual: lookup(mapped) }))
      })
      .filter(({ expected, actual }) => expected !== actual)

    expect(ipv4Vectors.length).toBeGreaterThan(0)
    expect(misses).toEqual([])
  })
})

describe("openCountryDatabase lookup input handling", () => {
  let lookup: CountryLookup

  beforeAll(async () => {
    lookup = await openCountryDatabase(DEFAULT_COUNTRY_DATABASE_PATH)
  })

  it.each([
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",
    "127.0.0.1",
    "169.254.10.20",
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.251",
    "192.0.2.1",
    "::",
    "::1",
    "fe80::1",
    "fd12:3456:789a::1",
    "2001:db8::1",
    "ff02::1",
    "::ffff:10.0.0.1",
    "::ffff:192.168.1.1",
    "::ffff:7f00:1"
  ])("returns null for special-purpose address %s", (ip) => {
    expect(lookup(ip)).toBeNull()
  })

  it.each([
    "",
    "not an ip",
    "8.8.8",
    "8.8.8.8.8",
    "256.1.1.1",
    "08.8.8.8",
    " 8.8.8.8",
    "8.8.8.8/32",
    "8.8.8.8:443",
    "[2001:4860:4860::8888]",
    "2001:4860:4860::8888::1",
    "::ffff:999.1.1.1",
    "fe80::1%eth0",
    "\u0000"
  ])("returns null for invalid address %j", (ip) => {
    expect(lookup(ip)).toBeNull()
  })
})

describe("openCountryDatabase with the shipped database", () => {
  let lookup: CountryLookup

  beforeAll(async () => {
    lookup = await openCountryDatabase(DEFAULT_COUNTRY_DATABASE_PATH)
  })

  it("resolves its path inside node_modules", () => {
    expect(DEFAULT_COUNTRY_DATABASE_PATH).toMatch(
      /node_modules\/@ip-location-db\/geo-whois-asn-country-mmdb\/geo-whois-asn-country\.mmdb$/
    )
  })

  it("finds 8.8.8.8 in US", () => {
    expect(lookup("8.8.8.8")).toBe("US")
  })

  it("finds mapped 8.8.8.8 in US", () => {
    expect(lookup("::ffff:8.8.8.8")).toBe("US")
  })

  it("finds 2001:4860:4860::8888 in US", () => {
    expect(lookup("2001:4860:4860::8888")).toBe("US")
  })

  it("returns null for 10.0.0.1", () => {
    expect(lookup("10.0.0.1")).toBeNull()
  })
})

// The same package also ships one file per IP version.
describe("openCountryDatabase with an IPv4-only database", () => {
  let lookup: CountryLookup

  beforeAll(async () => {
    lookup = await openCountryDatabase(
      DEFAULT_COUNTRY_DATABASE_PATH.replace(/geo-whois-asn-country\.mmdb$/, "geo-whois-asn-country-ipv4.mmdb")
    )
  })

  it("finds 8.8.8.8 in US", () => {
    expect(lookup("8.8.8.8")).toBe("US")
  })

  it("finds mapped 8.8.8.8 in US", () => {
    expect(lookup("::ffff:8.8.8.8")).toBe("US")
  })

  // Walking this address's first 32 bits would land on 32.1.72.96.
  it("returns null for IPv6 addresses", () => {
    expect(lookup("2001:4860:4860::8888")).toBeNull()
  })
})

describe("openCountryDatabase failures", () => {
  it("rejects a missing file", async () => {
    await expect(openCountryDatabase(databasePath("mmdb/does-not-exist.mmdb"))).rejects.toThrow(/ENOENT/)
  })

  it("rejects a file that is not a MaxMind DB", async () => {
    await expect(openCountryDatabase(databasePath("geoip_maxmind_test_dbs.json"))).rejects.toThrow(
      /not a valid MaxMind DB file/
    )
  })
})
