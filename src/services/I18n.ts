/**
 * Localised messages from `locales/<lang>.json`. English is the default and
 * the fallback for any key a language lacks; the locale files are checked at
 * load so that a missing key shows up in tests, not in front of a user.
 */
import * as Fs from "node:fs"
import { fileURLToPath } from "node:url"

export const LANGUAGES = ["en", "fr"] as const
export type Language = (typeof LANGUAGES)[number]

const LOCALES_DIR = fileURLToPath(new URL("../../locales", import.meta.url))

const loadCatalog = (language: Language): Readonly<Record<string, string>> => {
  const parsed: unknown = JSON.parse(Fs.readFileSync(`${LOCALES_DIR}/${language}.json`, "utf8"))
  if (typeof parsed !== "object" || parsed === null) throw new Error(`locales/${language}.json is not an object`)
  const catalog: Record<string, string> = {}
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== "string") throw new Error(`locales/${language}.json: ${key} is not a string`)
    catalog[key] = value
  }
  return catalog
}

const CATALOGS: Readonly<Record<Language, Readonly<Record<string, string>>>> = {
  en: loadCatalog("en"),
  fr: loadCatalog("fr")
}

export const catalogKeys = (language: Language): ReadonlyArray<string> => Object.keys(CATALOGS[language])

/** Formats the message `key` in `language`, replacing `{name}` with `params.name`. */
export const translate = (
  language: Language,
  key: string,
  params: Readonly<Record<string, string | number>> = {}
): string => {
  const template = CATALOGS[language][key] ?? CATALOGS.en[key] ?? key
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const value = params[name]
    return value === undefined ? whole : String(value)
  })
}

const isLanguage = (value: string): value is Language => (LANGUAGES as ReadonlyArray<string>).includes(value)

/**
 * Picks the response language: `?lang=` first, then the best supported
 * language of `Accept-Language` by its q-values (fr-CA counts as fr), then
 * English.
 */
export const negotiateLanguage = (queryLang: string | undefined, acceptLanguage: string | undefined): Language => {
  const fromQuery = primarySubtag(queryLang ?? "")
  if (isLanguage(fromQuery)) return fromQuery
  if (acceptLanguage === undefined) return "en"
  let best: { language: Language; quality: number } | undefined
  for (const part of acceptLanguage.split(",").slice(0, 20)) {
    const [range = "", ...parameters] = part.trim().split(";")
    const language = primarySubtag(range)
    if (!isLanguage(language)) continue
    const qualityParameter = parameters.map((p) => p.trim()).find((p) => p.startsWith("q="))
    // RFC 9110 qvalue: 0 to 1 with at most three decimals; anything else is ignored.
    if (qualityParameter !== undefined && !/^q=(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(qualityParameter)) continue
    const quality = qualityParameter === undefined ? 1 : Number(qualityParameter.slice(2))
    if (quality <= 0) continue
    if (best === undefined || quality > best.quality) best = { language, quality }
  }
  return best?.language ?? "en"
}

const primarySubtag = (tag: string) => tag.trim().toLowerCase().split(/[-_]/)[0] ?? ""
