/**
 * Validation and normalisation of one email address typed into a form field.
 *
 * Syntax comes from `email-addresses`, an RFC 5322 parser with RFC 6532
 * (UTF-8) support. This module layers the product policy on top: one plain
 * `local@domain` address, with no display name, comment, quoted local part or
 * IP-literal domain, and a DNS domain name with at least one dot.
 *
 * `normalized` is the key for storing and comparing addresses. It is NFC,
 * lower-cased, and its domain is converted to ASCII (punycode). It never
 * applies provider rules such as Gmail's dot and `+tag` stripping, so two
 * different mailboxes never share a key.
 */
import { domainToASCII, domainToUnicode } from "node:url"

import parseRfc5322 from "email-addresses"

/** Reasons for rejecting an address. Callers may rely on these codes. */
export const EMAIL_ADDRESS_REJECTIONS = [
  /** Nothing left after trimming spaces. */
  "empty",
  /** Longer than 254 octets, or than the parser input limit. */
  "too_long",
  /** Local part (before the `@`) longer than 64 octets. */
  "local_part_too_long",
  /** Control, format, separator, private-use or unassigned character, or a lone surrogate. */
  "invalid_character",
  /** Not an RFC 5322 address, or contains whitespace. */
  "invalid_syntax",
  /** More than one address, such as `a@example.com, b@example.com`. */
  "multiple_addresses",
  /** `Name <a@example.com>`, `<a@example.com>` or an RFC 5322 group. */
  "display_name_not_allowed",
  /** An RFC 5322 comment, such as `a@example.com (work)`. */
  "comment_not_allowed",
  /** A quoted local part, such as `"john smith"@example.com`. */
  "quoted_local_part",
  /** An address literal instead of a domain name, such as `a@[192.0.2.1]`. */
  "domain_literal_not_allowed",
  /** Fails IDNA (UTS 46) conversion, has no dot, or breaks DNS label rules. */
  "invalid_domain",
  /** Ends in a special-use top-level domain that cannot receive mail from the internet. */
  "reserved_domain"
] as const

export type EmailAddressRejection = (typeof EMAIL_ADDRESS_REJECTIONS)[number]

export type EmailAddressParseResult =
  | {
      readonly ok: true
      /** The address as typed, without surrounding spaces, for showing to people. */
      readonly display: string
      /** NFC, lower-cased local part, `@`, ASCII (punycode) domain. */
      readonly normalized: string
      /** ASCII (punycode) domain, lower-case. */
      readonly domain: string
    }
  | { readonly ok: false; readonly reason: EmailAddressRejection }

/** RFC 5321 section 4.5.3.1.3: a path is at most 256 octets including the angle brackets. */
const MAX_ADDRESS_OCTETS = 254
/** RFC 5321 section 4.5.3.1.1. */
const MAX_LOCAL_PART_OCTETS = 64
/** RFC 1035 section 2.3.4: 255 octets on the wire, 253 characters as text. */
const MAX_DOMAIN_LENGTH = 253

/**
 * Input limit checked before the parser runs, because the parser is recursive
 * and slows down (and can overflow the stack) on long inputs. A valid input
 * can be longer than its 254-octet normalized form, because UTS 46 maps some
 * 4-octet characters (such as mathematical bold letters) to one ASCII letter
 * and lower-casing shrinks a few (ẞ becomes ß). Even so it stays under 1,020
 * octets, so 1,280 rejects nothing that could be valid.
 *
 * NOTE: at this limit one call can still take about 25 ms (1,270 nested `(`,
 * Node 24.21 on a 2-core AMD EPYC VM), so endpoints that call this need rate
 * limiting.
 */
const MAX_INPUT_OCTETS = 1280

/**
 * Special-use top-level domains from the IANA Special-Use Domain Names
 * registry (RFC 6761, 6762, 7686, 9476) plus `.arpa` infrastructure. No
 * internet mail host lives under them. The documentation domains
 * (`example`, `example.com`, ...) stay allowed because demos and tests use them.
 */
const RESERVED_TOP_LEVEL_DOMAINS: ReadonlySet<string> = new Set([
  "alt",
  "arpa",
  "invalid",
  "local",
  "localhost",
  "onion",
  "test"
])

/** Spaces and tabs removed from both ends. Line breaks stay and are rejected. */
const SURROUNDING_SPACE = /^[\t\p{Zs}]+|[\t\p{Zs}]+$/gu

/**
 * Characters that have no place in a typed address. These are controls (tab,
 * CR, LF and DEL included), surrogates, private-use and unassigned code
 * points (noncharacters included), and every separator except the ASCII
 * space. Format characters are rejected too, except ZWNJ and ZWJ, which some
 * scripts need. The ASCII space passes so that the parser can report display
 * names and quoted local parts, and `checkSyntax` rejects it everywhere else.
 */
const UNSAFE_CHARACTER = /[\p{Cc}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]|(?![\u200C\u200D])\p{Cf}|(?! )\p{Zs}/u

/** One DNS label in LDH form (RFC 1123 section 2.1), already lower-case. */
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
const ALL_DIGITS = /^[0-9]+$/
/** ASCII characters other than letters, digits, dot and hyphen. */
const NON_LDH_ASCII = /[\x00-\x2c\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]/

const utf8Encoder = new TextEncoder()

function utf8Length(text: string): number {
  return utf8Encoder.encode(text).length
}

/** Lower-cases text and keeps it in NFC, because case mapping can decompose (İ becomes i + U+0307). */
function lowerCaseNfc(text: string): string {
  return text.toLowerCase().normalize("NFC")
}

/**
 * Validates and normalises one email address from a form field.
 *
 * Steps: trim spaces and tabs, reject lone surrogates and unsafe characters,
 * normalise to NFC, parse as RFC 5322 with UTF-8 allowed, apply the product
 * policy, lower-case, and convert the domain to ASCII with UTS 46 (Node's
 * `domainToASCII`). Reports bad input through the result instead of throwing.
 */
export function parseEmailAddress(input: string): EmailAddressParseResult {
  const display = input.replace(SURROUNDING_SPACE, "")
  if (display === "") {
    return reject("empty")
  }
  if (!display.isWellFormed()) {
    return reject("invalid_character")
  }

  const nfc = display.normalize("NFC")
  if (utf8Length(nfc) > MAX_INPUT_OCTETS) {
    return reject("too_long")
  }
  if (UNSAFE_CHARACTER.test(nfc)) {
    return reject("invalid_character")
  }

  const syntax = checkSyntax(nfc)
  if (typeof syntax === "string") {
    return reject(syntax)
  }

  const localPart = lowerCaseNfc(syntax.localPart)
  if (utf8Length(localPart) > MAX_LOCAL_PART_OCTETS) {
    return reject("local_part_too_long")
  }

  const domain = checkDomain(lowerCaseNfc(syntax.domain))
  if (typeof domain === "string") {
    return reject(domain)
  }

  // SMTPUTF8 mail may carry the domain in either form, so both must fit.
  const domainOctets = Math.max(domain.ascii.length, utf8Length(domain.unicode))
  if (utf8Length(localPart) + 1 + domainOctets > MAX_ADDRESS_OCTETS) {
    return reject("too_long")
  }

  return { ok: true, display, normalized: `${localPart}@${domain.ascii}`, domain: domain.ascii }
}

function reject(reason: EmailAddressRejection): EmailAddressParseResult {
  return { ok: false, reason }
}

type AstNode = parseRfc5322.ASTNode

function containsNode(root: AstNode, name: string): boolean {
  const pending: AstNode[] = [root]
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    if (node.name === name) {
      return true
    }
    pending.push(...node.children)
  }
  return false
}

function parseAddressList(text: string): parseRfc5322.ParsedResult | null {
  try {
    return parseRfc5322({ input: text, rfc6532: true, strict: true, startAt: "address-list" })
  } catch (error) {
    // Deeply nested comments overflow the recursive parser's stack.
    if (error instanceof RangeError) {
      return null
    }
    throw error
  }
}

/**
 * Parses NFC text as an RFC 5322 address list and accepts only a single bare
 * `local@domain` mailbox. Returns the two parts as typed, or the reason.
 */
function checkSyntax(text: string): { localPart: string; domain: string } | EmailAddressRejection {
  const parsed = parseAddressList(text)
  if (parsed === null) {
    return "invalid_syntax"
  }
  if (parsed.addresses.length > 1) {
    return "multiple_addresses"
  }

  const address = parsed.addresses[0]
  if (address === undefined) {
    return "invalid_syntax"
  }
  if (address.type === "group") {
    return "display_name_not_allowed"
  }

  const mailbox = address.node
  if (mailbox === undefined) {
    return "invalid_syntax"
  }
  if (containsNode(mailbox, "angle-addr")) {
    return "display_name_not_allowed"
  }
  if (containsNode(mailbox, "comment")) {
    return "comment_not_allowed"
  }
  if (containsNode(address.parts.local, "quoted-string")) {
    return "quoted_local_part"
  }
  if (containsNode(address.parts.domain, "domain-literal")) {
    return "domain_literal_not_allowed"
  }

  // Display names, comments and quoted strings are ruled out above, so any
  // space left is folding whitespace around the `@` or a dot.
  if (text.includes(" ")) {
    return "invalid_syntax"
  }

  // Without quoted strings the only `@` is the separator.
  const at = text.lastIndexOf("@")
  return { localPart: text.slice(0, at), domain: text.slice(at + 1) }
}

/**
 * Converts a lower-case NFC domain to ASCII with UTS 46 and checks DNS rules.
 * Returns both the ASCII form and its Unicode form (U-labels), or the reason.
 */
function checkDomain(domain: string): { ascii: string; unicode: string } | EmailAddressRejection {
  // `domainToASCII` parses a URL host: it percent-decodes, cuts at `/`, `?`
  // or `#`, and reads numeric hosts as IPv4. Allowing only letters, digits,
  // dots and hyphens among the ASCII characters, also after compatibility
  // mapping (fullwidth `％` becomes `%`), keeps it from rewriting the domain
  // into a different one.
  if (NON_LDH_ASCII.test(domain.normalize("NFKC"))) {
    return "invalid_domain"
  }

  const ascii = domainToASCII(domain)
  if (ascii === "" || ascii.length > MAX_DOMAIN_LENGTH) {
    return "invalid_domain"
  }

  const labels = ascii.split(".")
  const topLevel = labels.at(-1) ?? ""
  if (labels.length < 2 || !labels.every((label) => DNS_LABEL.test(label)) || ALL_DIGITS.test(topLevel)) {
    return "invalid_domain"
  }
  if (!labels.every(isValidALabelOrPlain)) {
    return "invalid_domain"
  }
  if (RESERVED_TOP_LEVEL_DOMAINS.has(topLevel)) {
    return "reserved_domain"
  }

  return { ascii, unicode: domainToUnicode(ascii) }
}

/**
 * Checks that a label starting with `xn--` is a real A-label: its punycode
 * decodes, and encoding the result gives the same label back. Other labels
 * pass.
 *
 * NOTE: UTS 46 already requires this, but `domainToASCII` in Node 24.21
 * (ada 4.0.0) returns labels such as `xn--0` unchanged, while Node 20.20
 * rejected them, so the check is repeated here.
 */
function isValidALabelOrPlain(label: string): boolean {
  if (!label.startsWith("xn--")) {
    return true
  }
  const decoded = domainToUnicode(label)
  return decoded !== label && domainToASCII(decoded) === label
}
