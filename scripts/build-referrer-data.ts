/**
 * Builds src/services/data/referrer-sources.json, the host lookup table that
 * src/services/TrafficSource.ts loads at startup.
 *
 * Inputs:
 * - src/services/data/matomo/{SearchEngines,Socials,AIAssistants}.yml, copies
 *   of Matomo's searchengine-and-social-list (CC0-1.0). See
 *   src/services/data/README.md for the upstream commits.
 * - The PORCHLIGHT_ADDITIONS table below: webmail hosts and ad-click
 *   redirectors (the Matomo lists have neither), Android app ids, and networks
 *   and engines the Matomo copy lacks.
 *
 * Run: npx node scripts/build-referrer-data.ts
 * The script is deterministic, so a rerun without input changes leaves the
 * output byte-identical.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { parse as parseYaml } from "yaml"

type Kind = "search" | "social" | "ai" | "email" | "paid"

interface EntryOutput {
  name: string
  kind: Kind
  origin: "matomo" | "porchlight"
  /** Query or fragment parameters that may carry the search term, in priority order. */
  params: string[]
  /** Regular expression sources matched against path + query, whose group 1 is the term. */
  pathPatterns: string[]
  /** Matomo's template for a link back to the engine, `{k}` being the term. */
  backlink: string | null
}

interface Addition {
  name: string
  kind: Kind
  /** Hostnames, `{}` wildcard hosts, `host/path` prefixes or Android package ids. */
  hosts: string[]
  params?: string[]
}

const dataDirectory = fileURLToPath(new URL("../src/services/data/", import.meta.url))
const matomoDirectory = `${dataDirectory}matomo/`
const outputPath = `${dataDirectory}referrer-sources.json`

const MATOMO_REPOSITORY = "https://github.com/matomo-org/searchengine-and-social-list"

// Commits of the upstream file versions that were copied into matomo/.
const MATOMO_FILES: ReadonlyArray<{ file: string; commit: string }> = [
  { file: "SearchEngines.yml", commit: "02e45a1caccbcefaba4d27e407f969bc1d777557" },
  { file: "Socials.yml", commit: "03dcb356c076419f9d32c6da6b69344bd23db106" },
  { file: "AIAssistants.yml", commit: "02a812577a19c32761a741871dfd66dc070e486a" }
]

// Porchlight's own additions. Names that equal a Matomo name merge into that
// source, so "x.com" reports as "Twitter" like t.co and twitter.com do.
const PORCHLIGHT_ADDITIONS: ReadonlyArray<Addition> = [
  // Webmail. Matomo's lists do not cover email at all.
  { name: "Gmail", kind: "email", hosts: ["mail.google.com", "inbox.google.com", "com.google.android.gm"] },
  {
    name: "Outlook.com",
    kind: "email",
    hosts: [
      "outlook.live.com",
      "mail.live.com",
      "outlook.office.com",
      "outlook.office365.com",
      "outlook.cloud.microsoft",
      "com.microsoft.office.outlook"
    ]
  },
  {
    name: "Yahoo! Mail",
    kind: "email",
    hosts: ["mail.yahoo.com", "mail.yahoo.net", "mail.yahoo.co.jp", "com.yahoo.mobile.client.android.mail"]
  },
  { name: "AOL Mail", kind: "email", hosts: ["mail.aol.com"] },
  { name: "iCloud Mail", kind: "email", hosts: ["www.icloud.com/mail"] },
  { name: "Proton Mail", kind: "email", hosts: ["mail.proton.me", "mail.protonmail.com", "ch.protonmail.android"] },
  { name: "Zoho Mail", kind: "email", hosts: ["mail.zoho.com", "mail.zoho.eu", "mail.zoho.in"] },
  { name: "Yandex Mail", kind: "email", hosts: ["mail.yandex.ru", "mail.yandex.com"] },
  { name: "Mail.ru", kind: "email", hosts: ["e.mail.ru"] },
  // GMX and WEB.DE serve webmail from numbered hosts such as 3c.gmx.net under /mail/.
  {
    name: "GMX",
    kind: "email",
    hosts: ["navigator.gmx.net", "navigator.gmx.com", "{}.gmx.net/mail", "{}.gmx.com/mail", "{}.gmx.de/mail"]
  },
  { name: "WEB.DE", kind: "email", hosts: ["navigator.web.de", "{}.web.de/mail"] },
  { name: "T-Online Mail", kind: "email", hosts: ["email.t-online.de"] },
  { name: "Seznam Email", kind: "email", hosts: ["email.seznam.cz"] },
  { name: "Fastmail", kind: "email", hosts: ["app.fastmail.com", "www.fastmail.com"] },
  { name: "Tuta", kind: "email", hosts: ["app.tuta.com", "mail.tutanota.com"] },
  { name: "Samsung Email", kind: "email", hosts: ["com.samsung.android.email.provider"] },

  // Redirectors that an ad click passes through.
  {
    name: "Google",
    kind: "paid",
    hosts: [
      "googleadservices.com",
      "doubleclick.net",
      "googlesyndication.com",
      "google.com/aclk",
      "google.{}/aclk"
    ]
  },
  { name: "Bing", kind: "paid", hosts: ["bing.com/aclk", "{}.bing.com/aclk"] },

  // Search engines that the Matomo copy lacks.
  { name: "Brave Search", kind: "search", hosts: ["search.brave.com"], params: ["q"] },
  { name: "Kagi", kind: "search", hosts: ["kagi.com"], params: ["q"] },
  { name: "Mojeek", kind: "search", hosts: ["mojeek.com", "www.mojeek.com"], params: ["q"] },
  { name: "Presearch", kind: "search", hosts: ["presearch.com"], params: ["q"] },
  { name: "Bing", kind: "search", hosts: ["com.microsoft.bing"], params: ["q"] },

  // Social networks, their short-link hosts and Android app ids.
  {
    name: "Facebook",
    kind: "social",
    hosts: ["com.facebook.katana", "com.facebook.lite"]
  },
  { name: "Facebook Messenger", kind: "social", hosts: ["messenger.com", "m.me", "com.facebook.orca"] },
  { name: "instagram", kind: "social", hosts: ["com.instagram.android"] },
  { name: "Threads", kind: "social", hosts: ["threads.net", "threads.com", "com.instagram.barcelona"] },
  { name: "Twitter", kind: "social", hosts: ["x.com", "com.twitter.android"] },
  { name: "LinkedIn", kind: "social", hosts: ["com.linkedin.android"] },
  { name: "reddit", kind: "social", hosts: ["redd.it", "com.reddit.frontpage"] },
  // Pinterest runs country domains such as pinterest.de and pinterest.co.uk.
  { name: "Pinterest", kind: "social", hosts: ["pinterest.{}", "pin.it", "com.pinterest"] },
  // t.umblr.com is the redirector Tumblr wraps around outbound links.
  { name: "tumblr", kind: "social", hosts: ["t.umblr.com", "com.tumblr"] },
  { name: "YouTube", kind: "social", hosts: ["com.google.android.youtube"] },
  { name: "TikTok", kind: "social", hosts: ["tiktok.com", "com.zhiliaoapp.musically", "com.ss.android.ugc.trill"] },
  { name: "Bluesky", kind: "social", hosts: ["bsky.app", "xyz.blueskyweb.app"] },
  { name: "Snapchat", kind: "social", hosts: ["snapchat.com", "com.snapchat.android"] },
  { name: "Telegram", kind: "social", hosts: ["t.me"] },
  { name: "WhatsApp", kind: "social", hosts: ["whatsapp.com", "wa.me", "com.whatsapp"] },
  { name: "Discord", kind: "social", hosts: ["discord.com", "discord.gg", "com.discord"] },
  { name: "LINE", kind: "social", hosts: ["line.me", "jp.naver.line.android"] },
  { name: "WeChat", kind: "social", hosts: ["com.tencent.mm"] },
  { name: "Vkontakte", kind: "social", hosts: ["com.vkontakte.android"] },

  // AI assistants.
  { name: "Poe", kind: "ai", hosts: ["poe.com"] },
  { name: "Duck.ai", kind: "ai", hosts: ["duck.ai"] }
]

const entries: EntryOutput[] = []
/** Host key -> entry indexes. A key is a hostname, a `{}` wildcard host or an app id. */
const hosts = new Map<string, number[]>()
/** Host key -> path prefixes with their entry indexes. */
const hostPaths = new Map<string, Map<string, number[]>>()

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
}

function stringList(value: unknown, where: string): string[] {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) throw new Error(`${where}: expected a list, got ${JSON.stringify(value)}`)
  return value.map((item) => {
    if (typeof item !== "string") throw new Error(`${where}: expected a string, got ${JSON.stringify(item)}`)
    return item
  })
}

function readYamlMap(file: string): Record<string, unknown> {
  const parsed: unknown = parseYaml(readFileSync(`${matomoDirectory}${file}`, "utf8"))
  if (!isRecord(parsed)) throw new Error(`${file}: expected a mapping at the top level`)
  return parsed
}

/** Decodes Matomo's URL-encoded names such as "Google%2B" and returns other names unchanged. */
function displayName(name: string): string {
  try {
    return decodeURIComponent(name)
  } catch {
    return name
  }
}

/**
 * Splits a list item into a host key and an optional path prefix. Android
 * app referrers, written `android-app://ID` or `android-app//ID/...` in the
 * lists, become the bare package id.
 */
function splitHost(raw: string): { host: string; path: string | null } {
  let value = raw.trim().toLowerCase()
  const app = /^android-app:?\/\/([^/]+)/.exec(value)
  if (app?.[1] !== undefined) return { host: app[1], path: null }

  value = value.replace(/^https?:\/\//, "")
  const slash = value.indexOf("/")
  if (slash === -1) return { host: value, path: null }

  let path = value.slice(slash).replace(/\/+$/, "")
  if (path === "") return { host: value.slice(0, slash), path: null }
  if (!path.startsWith("/")) path = `/${path}`
  return { host: value.slice(0, slash), path }
}

function addHost(raw: string, entryIndex: number): void {
  const { host, path } = splitHost(raw)
  if (host === "") return

  if (path === null) {
    const list = hosts.get(host) ?? []
    if (!list.includes(entryIndex)) list.push(entryIndex)
    hosts.set(host, list)
    return
  }

  const byPath = hostPaths.get(host) ?? new Map<string, number[]>()
  const list = byPath.get(path) ?? []
  if (!list.includes(entryIndex)) list.push(entryIndex)
  byPath.set(path, list)
  hostPaths.set(host, byPath)
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
}

/**
 * Reads a backlink template. A `{k}` in the query or fragment names one more
 * keyword parameter, and a `{k}` in the path becomes a path pattern.
 */
function readBacklink(backlink: string): { param: string | null; pathPattern: string | null } {
  const relative = backlink.replace(/^https?:\/\/[^/]+/, "")
  const marker = relative.search(/[?#&]/)
  const pathPart = marker === -1 ? relative : relative.slice(0, marker)

  if (pathPart.includes("{k}")) {
    const [before = "", after = ""] = pathPart.replace(/^\/+/, "").split("{k}")
    const pattern = `^/*${escapeRegExp(before)}([^/?#]+)${escapeRegExp(after.replace(/\/+$/, ""))}`
    return { param: null, pathPattern: pattern }
  }

  const keyword = /[?#&/]([^=?#&/]+)=\{k\}/.exec(relative)
  return { param: keyword?.[1] ?? null, pathPattern: null }
}

/** Converts a Matomo `'/regex/'` parameter to a JavaScript RegExp source. */
function matomoRegexSource(param: string): string | null {
  if (param.length < 3 || !param.startsWith("/") || !param.endsWith("/")) return null
  const source = param.slice(1, -1)
  // Throws on a pattern that JavaScript cannot compile, which stops the build.
  new RegExp(source)
  return source
}

function pushEntry(entry: EntryOutput): number {
  entries.push(entry)
  return entries.length - 1
}

// NOTE: Matomo lists some sites' own search under the engine that powered it
// (www.cnn.com under Google), so every referral from such a host reads as
// organic search from that engine.
function addSearchEngines(): void {
  const file = "SearchEngines.yml"
  for (const [name, configs] of Object.entries(readYamlMap(file))) {
    if (!Array.isArray(configs)) throw new Error(`${file}: ${name}: expected a list of configurations`)

    for (const config of configs) {
      if (!isRecord(config)) throw new Error(`${file}: ${name}: expected a configuration mapping`)
      const params: string[] = []
      const pathPatterns: string[] = []

      for (const param of stringList(config["params"], `${file}: ${name}: params`)) {
        const source = matomoRegexSource(param)
        if (source !== null) pathPatterns.push(source)
        else if (param.trim() !== "" && !params.includes(param)) params.push(param)
      }

      const backlink = typeof config["backlink"] === "string" ? config["backlink"] : null
      if (backlink !== null) {
        const derived = readBacklink(backlink)
        if (derived.param !== null && !params.includes(derived.param)) params.push(derived.param)
        if (derived.pathPattern !== null && pathPatterns.length === 0) pathPatterns.push(derived.pathPattern)
      }

      const index = pushEntry({ name: displayName(name), kind: "search", origin: "matomo", params, pathPatterns, backlink })
      for (const url of stringList(config["urls"], `${file}: ${name}: urls`)) addHost(url, index)
    }
  }
}

function addHostLists(file: string, kind: Kind): void {
  for (const [name, hostList] of Object.entries(readYamlMap(file))) {
    const index = pushEntry({ name: displayName(name), kind, origin: "matomo", params: [], pathPatterns: [], backlink: null })
    for (const host of stringList(hostList, `${file}: ${name}`)) addHost(host, index)
  }
}

function addPorchlightAdditions(): void {
  for (const addition of PORCHLIGHT_ADDITIONS) {
    const existing = entries.findIndex(
      (entry) => entry.name === addition.name && entry.kind === addition.kind && entry.params.length === 0
    )
    const index =
      existing !== -1 && addition.params === undefined
        ? existing
        : pushEntry({
            name: addition.name,
            kind: addition.kind,
            origin: "porchlight",
            params: addition.params ?? [],
            pathPatterns: [],
            backlink: null
          })
    for (const host of addition.hosts) addHost(host, index)
  }
}

/** Returns the map's entries sorted by key in code-unit order, independent of locale. */
function sortedEntries<V>(map: Map<string, V>): Array<[string, V]> {
  return [...map.entries()].sort(([a], [b]) => {
    if (a < b) return -1
    if (a > b) return 1
    return 0
  })
}

/** Writes one JSON value per line so that list updates produce readable diffs. */
function render(): string {
  const lines: string[] = []
  lines.push("{")
  lines.push(
    `"comment": ${JSON.stringify("Generated by scripts/build-referrer-data.ts from src/services/data/matomo/*.yml (CC0-1.0) and the Porchlight additions in that script. Do not edit by hand.")},`
  )
  lines.push(
    `"sources": ${JSON.stringify(
      MATOMO_FILES.map(({ file, commit }) => ({ repository: MATOMO_REPOSITORY, file, commit, licence: "CC0-1.0" }))
    )},`
  )

  lines.push(`"entries": [`)
  lines.push(entries.map((entry) => JSON.stringify(entry)).join(",\n"))
  lines.push("],")

  lines.push(`"hosts": {`)
  lines.push(
    sortedEntries(hosts)
      .map(([host, list]) => `${JSON.stringify(host)}: ${JSON.stringify(list)}`)
      .join(",\n")
  )
  lines.push("},")

  lines.push(`"hostPaths": {`)
  lines.push(
    sortedEntries(hostPaths)
      .map(([host, byPath]) => {
        const paths = sortedEntries(byPath).map(([path, list]) => ({ path, entries: list }))
        return `${JSON.stringify(host)}: ${JSON.stringify(paths)}`
      })
      .join(",\n")
  )
  lines.push("}")
  lines.push("}")
  return `${lines.join("\n")}\n`
}

addSearchEngines()
addHostLists("Socials.yml", "social")
addHostLists("AIAssistants.yml", "ai")
addPorchlightAdditions()
writeFileSync(outputPath, render())

const pathCount = [...hostPaths.values()].reduce((sum, byPath) => sum + byPath.size, 0)
console.log(`Wrote ${outputPath}: ${entries.length} entries, ${hosts.size} host keys, ${pathCount} host/path keys`)
