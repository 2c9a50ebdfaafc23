import { readFileSync } from "node:fs"

import { describe, expect, it } from "vitest"

import {
  EMAIL_ADDRESS_REJECTIONS,
  type EmailAddressParseResult,
  type EmailAddressRejection,
  parseEmailAddress
} from "../src/services/EmailAddress.ts"

// Each third-party vector file is a 30% sample of a larger set, so the
// floors below leave room for the held-back part.
const TESTDATA_DIR = new URL("../../shared/testdata/", import.meta.url)

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

function isJsonObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value)
}

function readVectors(file: string): JsonObject[] {
  const parsed: Json = JSON.parse(readFileSync(new URL(file, TESTDATA_DIR), "utf8"))
  const vectors = isJsonObject(parsed) ? parsed["vectors"] : undefined
  if (!Array.isArray(vectors) || !vectors.every(isJsonObject)) {
    throw new Error(`${file}: expected an object with a "vectors" array of objects`)
  }
  return vectors
}

function stringField(vector: JsonObject, name: string): string {
  const value = vector[name]
  if (typeof value !== "string") {
    throw new Error(`vector ${JSON.stringify(vector)}: field "${name}" is not a string`)
  }
  return value
}

function booleanField(vector: JsonObject, name: string): boolean {
  const value = vector[name]
  if (typeof value !== "boolean") {
    throw new Error(`vector ${JSON.stringify(vector)}: field "${name}" is not a boolean`)
  }
  return value
}

interface Disagreement {
  readonly input: string
  readonly expected: string
  readonly actual: string
}

interface Agreement {
  readonly agreed: number
  readonly total: number
  readonly disagreements: Disagreement[]
}

function describeResult(result: EmailAddressParseResult): string {
  return result.ok ? `accepted as ${result.normalized}` : `rejected: ${result.reason}`
}

/** Scores accept/reject verdicts against a file's expectation and logs the score. */
function scoreVerdicts(label: string, cases: ReadonlyArray<{ input: string; valid: boolean }>): Agreement {
  const disagreements: Disagreement[] = []
  for (const { input, valid } of cases) {
    const result = parseEmailAddress(input)
    if (result.ok !== valid) {
      disagreements.push({ input, expected: valid ? "valid" : "invalid", actual: describeResult(result) })
    }
  }
  return report(label, { agreed: cases.length - disagreements.length, total: cases.length, disagreements })
}

function report(label: string, agreement: Agreement): Agreement {
  const percent = ((100 * agreement.agreed) / agreement.total).toFixed(1)
  const lines = [`${label}: ${agreement.agreed}/${agreement.total} agree (${percent}%)`]
  for (const { input, expected, actual } of agreement.disagreements) {
    lines.push(`  ${JSON.stringify(input)}: expected ${expected}, ${actual}`)
  }
  console.info(lines.join("\n"))
  return agreement
}

function ratio(agreement: Agreement): number {
  return agreement.agreed / agreement.total
}

function lowerCaseNfc(text: string): string {
  return text.toLowerCase().normalize("NFC")
}

function splitAddress(address: string): { localPart: string; domain: string } {
  const at = address.lastIndexOf("@")
  return { localPart: address.slice(0, at), domain: address.slice(at + 1) }
}

describe("parseEmailAddress against third-party vectors", () => {
  // is_email `valid` also accepts RFC 5321-only forms (quoted local parts,
  // dotless domains). A form field wants a plain everyday address, which is
  // `strict_valid`. Known disagreement: the file treats surrounding spaces
  // as folding whitespace, while the product trims them first.
  it("agrees with is_email strict_valid", () => {
    const cases = readVectors("email_isemail.json").map((vector) => ({
      input: stringField(vector, "input"),
      valid: booleanField(vector, "strict_valid")
    }))

    const agreement = scoreVerdicts("email_isemail.json strict_valid", cases)

    expect(ratio(agreement)).toBeGreaterThanOrEqual(0.95)
  })

  // The library's defaults match the product policy: no display names, no
  // quoted local parts, no address literals, no special-use domains.
  // Known disagreement: it measures length before NFC normalisation, while
  // the product measures the NFC form it stores, so an NFD address of at
  // most 254 octets after normalisation passes here.
  it("agrees with python email-validator valid", () => {
    const cases = readVectors("email_python_email_validator.json").map((vector) => ({
      input: stringField(vector, "input"),
      valid: booleanField(vector, "valid")
    }))

    const agreement = scoreVerdicts("email_python_email_validator.json valid", cases)

    expect(ratio(agreement)).toBeGreaterThanOrEqual(0.95)
  })

  // Its normalised form keeps the local part's case and the Unicode domain.
  // Ours lower-cases the local part and uses the ASCII domain, so the
  // comparison applies those two steps to its `normalized` and `ascii_domain`.
  it("matches python email-validator normalisation", () => {
    const disagreements: Disagreement[] = []
    let total = 0
    for (const vector of readVectors("email_python_email_validator.json")) {
      if (vector["valid"] !== true) {
        continue
      }
      total += 1
      const input = stringField(vector, "input")
      const theirs = splitAddress(stringField(vector, "normalized"))
      const expected = `${lowerCaseNfc(theirs.localPart)}@${stringField(vector, "ascii_domain")}`
      const asciiEmail = vector["ascii_email"]
      const result = parseEmailAddress(input)
      const agrees =
        result.ok &&
        result.normalized === expected &&
        result.domain === stringField(vector, "ascii_domain") &&
        (typeof asciiEmail !== "string" || result.normalized === asciiEmail.toLowerCase())
      if (!agrees) {
        disagreements.push({ input, expected, actual: describeResult(result) })
      }
    }

    const agreement = report("email_python_email_validator.json normalized", {
      agreed: total - disagreements.length,
      total,
      disagreements
    })

    expect(total).toBeGreaterThan(0)
    expect(ratio(agreement)).toBeGreaterThanOrEqual(0.95)
  })

  // Only `options: null` rows show the library's defaults. Those defaults
  // accept quoted local parts, which the product rejects, so the floor here
  // is lower: every disagreement in this sample is a quoted local part.
  it("agrees with validator.js isEmail defaults", () => {
    const cases = readVectors("email_validatorjs_isemail.json")
      .filter((vector) => vector["options"] === null)
      .map((vector) => ({ input: stringField(vector, "input"), valid: booleanField(vector, "valid") }))

    const agreement = scoreVerdicts("email_validatorjs_isemail.json options=null", cases)

    expect(ratio(agreement)).toBeGreaterThanOrEqual(0.85)
  })

  // Rows run with options that only widen what validator.js accepts (display
  // names, IP domains) do not show what the product should accept, but an
  // address rejected even then must be rejected by the stricter product
  // policy too. Rows with narrowing options (host lists, blacklisted
  // characters, required display names) encode another policy and are
  // skipped.
  it("rejects what validator.js rejects under widening options", () => {
    const wideningOptions: ReadonlyArray<readonly [string, unknown]> = [
      ["allow_display_name", true],
      ["allow_ip_domain", true],
      ["allow_underscores", true],
      ["allow_utf8_local_part", true],
      ["ignore_max_length", true],
      ["require_tld", false]
    ]
    const isWidening = (options: Json | undefined): boolean =>
      isJsonObject(options) &&
      Object.entries(options).every(([key, value]) =>
        wideningOptions.some(([wideKey, wideValue]) => key === wideKey && value === wideValue)
      )

    const acceptedByUs = readVectors("email_validatorjs_isemail.json")
      .filter((vector) => isWidening(vector["options"]) && vector["valid"] === false)
      .map((vector) => stringField(vector, "input"))
      .filter((input) => parseEmailAddress(input).ok)

    expect(acceptedByUs).toEqual([])
  })

  // validator.js normalizeEmail is provider-specific (Gmail dots and +tags,
  // googlemail.com, Yandex domains). The product never merges mailboxes,
  // so where that library rewrites the local part or the domain, our form
  // must differ from its output, and otherwise it must be the lower-case
  // input. Known disagreement: a quoted local part, which it keeps and the
  // product rejects.
  describe("validator.js normalizeEmail", () => {
    const rows = readVectors("email_validatorjs_normalize.json").map((vector) => {
      const expected = vector["expected"]
      return { input: stringField(vector, "input"), theirs: typeof expected === "string" ? expected : null }
    })

    function rewritesAddress(input: string, theirs: string): boolean {
      const before = splitAddress(input.toLowerCase())
      const after = splitAddress(theirs.toLowerCase())
      return before.localPart !== after.localPart || before.domain !== after.domain
    }

    it("agrees with the no-merge rule", () => {
      const disagreements: Disagreement[] = []
      for (const { input, theirs } of rows) {
        const result = parseEmailAddress(input)
        if (theirs === null) {
          if (result.ok) {
            disagreements.push({ input, expected: "rejected", actual: describeResult(result) })
          }
          continue
        }
        const lowerCaseInput = input.toLowerCase()
        if (!result.ok || result.normalized !== lowerCaseInput) {
          disagreements.push({ input, expected: `accepted as ${lowerCaseInput}`, actual: describeResult(result) })
        }
      }

      const agreement = report("email_validatorjs_normalize.json no-merge rule", {
        agreed: rows.length - disagreements.length,
        total: rows.length,
        disagreements
      })

      expect(ratio(agreement)).toBeGreaterThanOrEqual(0.95)
    })

    it("never produces the provider-merged form", () => {
      const merged = rows
        .filter(({ input, theirs }) => theirs !== null && rewritesAddress(input, theirs))
        .filter(({ input, theirs }) => {
          const result = parseEmailAddress(input)
          return result.ok && result.normalized === theirs?.toLowerCase()
        })
        .map(({ input }) => input)

      expect(merged).toEqual([])
    })
  })
})

describe("parseEmailAddress hand cases", () => {
  const maxLocalPart = "a".repeat(64)
  // 64 + 1 + 189 = 254 octets, the limit.
  const longestDomain = `${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`

  const accepted: ReadonlyArray<{ input: string; display: string; normalized: string; domain: string }> = [
    {
      input: "Jane.Doe@Example.COM",
      display: "Jane.Doe@Example.COM",
      normalized: "jane.doe@example.com",
      domain: "example.com"
    },
    {
      input: "  jane@example.com\t",
      display: "jane@example.com",
      normalized: "jane@example.com",
      domain: "example.com"
    },
    {
      input: "\u00a0jane@example.com\u3000",
      display: "jane@example.com",
      normalized: "jane@example.com",
      domain: "example.com"
    },
    { input: "a+tag@gmail.com", display: "a+tag@gmail.com", normalized: "a+tag@gmail.com", domain: "gmail.com" },
    {
      input: "first.last@googlemail.com",
      display: "first.last@googlemail.com",
      normalized: "first.last@googlemail.com",
      domain: "googlemail.com"
    },
    {
      input: "用户@例子.广告",
      display: "用户@例子.广告",
      normalized: "用户@xn--fsqu00a.xn--4rr70v",
      domain: "xn--fsqu00a.xn--4rr70v"
    },
    {
      input: "JÖRG@BÜCHER.DE",
      display: "JÖRG@BÜCHER.DE",
      normalized: "jörg@xn--bcher-kva.de",
      domain: "xn--bcher-kva.de"
    },
    {
      input: "a@xn--bcher-kva.de",
      display: "a@xn--bcher-kva.de",
      normalized: "a@xn--bcher-kva.de",
      domain: "xn--bcher-kva.de"
    },
    // Lower-casing İ gives i + U+0307, which stays in NFC.
    { input: "İ@example.com", display: "İ@example.com", normalized: "i\u0307@example.com", domain: "example.com" },
    // Non-transitional UTS 46 keeps ß and encodes it.
    { input: "ß@faß.de", display: "ß@faß.de", normalized: "ß@xn--fa-hia.de", domain: "xn--fa-hia.de" },
    {
      input: `${maxLocalPart}@${longestDomain}`,
      display: `${maxLocalPart}@${longestDomain}`,
      normalized: `${maxLocalPart}@${longestDomain}`,
      domain: longestDomain
    }
  ]

  it.each(accepted)("accepts $input", ({ input, display, normalized, domain }) => {
    expect(parseEmailAddress(input)).toEqual({ ok: true, display, normalized, domain })
  })

  const rejected: ReadonlyArray<{ input: string; reason: EmailAddressRejection }> = [
    { input: "", reason: "empty" },
    { input: " \t ", reason: "empty" },
    { input: `${maxLocalPart}@${longestDomain}x`, reason: "too_long" },
    { input: `${"a".repeat(2000)}@example.com`, reason: "too_long" },
    { input: `${"a".repeat(65)}@example.com`, reason: "local_part_too_long" },
    { input: "jane@example.com\n", reason: "invalid_character" },
    { input: "jane@example.com\r\n", reason: "invalid_character" },
    { input: "ja\u0000ne@example.com", reason: "invalid_character" },
    { input: "\ud800jane@example.com", reason: "invalid_character" },
    { input: "jane\udc00@example.com", reason: "invalid_character" },
    { input: "jane\u202e@example.com", reason: "invalid_character" },
    { input: "jane\u200b@example.com", reason: "invalid_character" },
    { input: "jane@exa\u00a0mple.com", reason: "invalid_character" },
    { input: "jane@example", reason: "invalid_domain" },
    { input: "jane", reason: "invalid_syntax" },
    { input: "jane@@example.com", reason: "invalid_syntax" },
    { input: "jane..doe@example.com", reason: "invalid_syntax" },
    { input: "jane @example.com", reason: "invalid_syntax" },
    { input: `${"(".repeat(1200)}a@example.com`, reason: "invalid_syntax" },
    { input: "jane@example.com, john@example.com", reason: "multiple_addresses" },
    { input: "Jane Doe <jane@example.com>", reason: "display_name_not_allowed" },
    { input: "<jane@example.com>", reason: "display_name_not_allowed" },
    { input: "Team: jane@example.com;", reason: "display_name_not_allowed" },
    { input: "jane@example.com (work)", reason: "comment_not_allowed" },
    { input: '"jane doe"@example.com', reason: "quoted_local_part" },
    { input: "jane@[192.0.2.1]", reason: "domain_literal_not_allowed" },
    { input: "jane@192.0.2.1", reason: "invalid_domain" },
    { input: "jane@-example.com", reason: "invalid_domain" },
    { input: "jane@example_1.com", reason: "invalid_domain" },
    { input: "jane@xn--0.com", reason: "invalid_domain" },
    { input: `jane@${"a".repeat(64)}.com`, reason: "invalid_domain" },
    // A URL host parser would cut at `/` or percent-decode into another domain.
    { input: "jane@example.com/path", reason: "invalid_domain" },
    { input: "jane@ex%61mple.com", reason: "invalid_domain" },
    { input: "jane@ex\uff05\uff16\uff11mple.com", reason: "invalid_domain" },
    { input: "jane@printer.local", reason: "reserved_domain" },
    { input: "jane@site.test", reason: "reserved_domain" }
  ]

  it.each(rejected)("rejects $input as $reason", ({ input, reason }) => {
    expect(parseEmailAddress(input)).toEqual({ ok: false, reason })
  })

  // UTS 46 maps mathematical bold letters (4 octets each) to ASCII, so this
  // input of 999 octets normalises to 254, the limit.
  it("accepts long input that normalises short", () => {
    const bold = (length: number): string =>
      Array.from({ length }, (_, i) => String.fromCodePoint(0x1d41a + (i % 26))).join("")
    const ascii = (length: number): string =>
      Array.from({ length }, (_, i) => String.fromCharCode(0x61 + (i % 26))).join("")
    const input = `\u1e9e@${[bold(63), bold(63), bold(63), bold(59)].join(".")}`
    const domain = [ascii(63), ascii(63), ascii(63), ascii(59)].join(".")

    expect(new TextEncoder().encode(input).length).toBe(999)
    expect(parseEmailAddress(input)).toEqual({ ok: true, display: input, normalized: `\u00df@${domain}`, domain })
  })

  it("covers every rejection reason", () => {
    const covered = new Set(rejected.map(({ reason }) => reason))
    const missing = EMAIL_ADDRESS_REJECTIONS.filter((reason) => !covered.has(reason))

    expect(missing).toEqual([])
  })

  it("gives NFC and NFD input one normalized form", () => {
    const composed = parseEmailAddress("J\u00f6rg@B\u00fccher.de")
    const decomposed = parseEmailAddress("Jo\u0308rg@Bu\u0308cher.de")

    expect(composed).toMatchObject({ ok: true, normalized: "j\u00f6rg@xn--bcher-kva.de" })
    expect(decomposed).toMatchObject({ ok: true, normalized: "j\u00f6rg@xn--bcher-kva.de" })
  })

  it("keeps display as typed", () => {
    const result = parseEmailAddress(" Jo\u0308rg@Bu\u0308cher.de ")

    expect(result).toMatchObject({ ok: true, display: "Jo\u0308rg@Bu\u0308cher.de" })
  })
})

describe("parseEmailAddress random input", () => {
  // Deterministic xorshift32, so a failure reproduces.
  function randomSource(seed: number): () => number {
    let state = seed
    return () => {
      state ^= state << 13
      state ^= state >>> 17
      state ^= state << 5
      return (state >>> 0) / 0x1_0000_0000
    }
  }

  const alphabet = [
    ..."aZ09.-_+@\"()<>[]\\,;: \t\r\n%/",
    "\u00e9",
    "e\u0301",
    "\u00df",
    "\u0130",
    "\u200d",
    "\u200b",
    "\ud800",
    "\udc00",
    "\ud83d\ude00",
    "\uff0e",
    "\uff05",
    "\u3002",
    "xn--",
    "@example.com",
    "\u4f8b\u5b50"
  ]
  const octets = (text: string): number => new TextEncoder().encode(text).length
  const label = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

  it("returns results that keep the invariants", () => {
    const random = randomSource(0x5eed)
    const broken: string[] = []
    let acceptedCount = 0
    for (let i = 0; i < 5000; i += 1) {
      const length = 1 + Math.floor(random() * 12)
      let input = ""
      for (let j = 0; j < length; j += 1) {
        input += alphabet[Math.floor(random() * alphabet.length)] ?? ""
      }
      const result = parseEmailAddress(input)
      if (!result.ok) {
        continue
      }
      acceptedCount += 1
      const { localPart, domain } = splitAddress(result.normalized)
      const keeps =
        result.normalized === lowerCaseNfc(result.normalized) &&
        result.normalized.isWellFormed() &&
        domain === result.domain &&
        octets(localPart) <= 64 &&
        octets(result.normalized) <= 254 &&
        domain.split(".").length >= 2 &&
        domain.split(".").every((part) => label.test(part))
      if (!keeps) {
        broken.push(`${JSON.stringify(input)} -> ${result.normalized}`)
      }
    }

    expect(acceptedCount).toBeGreaterThan(0)
    expect(broken).toEqual([])
  })
})
