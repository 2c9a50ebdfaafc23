/**
 * Classifies a request's User-Agent string, and the Chromium client-hint
 * headers that came with it, into a device type and a bot flag.
 *
 * isbot 5 decides what is a bot and bowser 2 decides desktop, mobile or
 * tablet. The rules in this file only cover what those two libraries miss:
 * automation markers, TVs and other devices outside our device types, tablet
 * model names, old phone platforms, and client hints. docs/classification.md
 * lists the policy and the measured accuracy.
 */
import Bowser from "bowser"
import { isbot } from "isbot"

export type DeviceType = "desktop" | "mobile" | "tablet" | "bot" | "unknown"

type DeviceKind = Exclude<DeviceType, "bot">

export interface Classification {
  readonly deviceType: DeviceType
  readonly isBot: boolean
}

type HeaderValue = string | ReadonlyArray<string> | undefined

/**
 * The client-hint request headers that the classifier reads, keyed by their
 * lower-cased names. Other headers are allowed and ignored, so Node's
 * `IncomingHttpHeaders` can be passed as it is. Values are the raw header
 * text, such as `?1` or `"Android"`.
 */
export interface ClientHints {
  readonly [header: string]: HeaderValue
  readonly "sec-ch-ua"?: HeaderValue
  readonly "sec-ch-ua-mobile"?: HeaderValue
  readonly "sec-ch-ua-platform"?: HeaderValue
  readonly "sec-ch-ua-model"?: HeaderValue
  readonly "sec-ch-ua-form-factors"?: HeaderValue
  readonly "sec-ch-ua-full-version-list"?: HeaderValue
}

const BOT: Classification = { deviceType: "bot", isBot: true }

const BY_DEVICE_KIND: Record<DeviceKind, Classification> = {
  desktop: { deviceType: "desktop", isBot: false },
  mobile: { deviceType: "mobile", isBot: false },
  tablet: { deviceType: "tablet", isBot: false },
  unknown: { deviceType: "unknown", isBot: false }
}

// ---------------------------------------------------------------------------
// Bot rules added to isbot

// Automation and fetchers that isbot 5.2.4 does not flag. Puppeteer and
// Playwright add no name of their own to the UA by default, but test setups
// often append one.
const EXTRA_BOT_PATTERN = new RegExp(
  [
    "headless",
    "\\bpuppeteer\\b",
    "\\bplaywright\\b",
    "\\bselenium\\b",
    "\\bwebdriver\\b",
    "\\blighthouse\\b",
    "\\bdart:io\\b",
    "thumbnail",
    "screenshot"
  ].join("|"),
  "i"
)

// Headless Chrome lists "HeadlessChrome" among its sec-ch-ua brands.
const HEADLESS_BRAND_PATTERN = /headless/i

// ---------------------------------------------------------------------------
// Device rules added to bowser

// Browsers on devices that are not a desktop, phone or tablet: TVs and
// set-top boxes, consoles, watches, headsets, smart speakers and displays.
// bowser 2.15 calls most of these tablets (Android without "Mobile") or phones.
const OTHER_DEVICE_PATTERN = new RegExp(
  [
    // TVs and set-top boxes
    "smart-?tv",
    "hbbtv",
    "ce-html",
    "netcast",
    "nettv",
    "web0s",
    "webos\\.tv",
    "\\btv safari",
    "\\(lite\\) tv\\b",
    "safari/[\\d.]+ tv\\b",
    "android ?tv",
    "google ?tv",
    "apple ?tv",
    "\\btvos\\b",
    "fire ?tv",
    "bravia",
    "\\broku",
    "crkey",
    "chromecast",
    "vidaa",
    "vizios",
    "smartcast",
    "opera tv",
    "\\bomi/",
    "inettvbrowser",
    "sonydtv",
    "sonycebrowser",
    "\\bkodi/",
    "\\btv bro\\b",
    "\\btv ?box\\b",
    "\\bwebtv\\b",
    "\\bmibox",
    "\\bmitv",
    "brightsign",
    "\\bdtv_",
    "large screen",
    "\\bstbapp\\b",
    "\\btivo",
    "tclwebkit",
    // Opera Presto on MIPS or ARM Linux is the browser of set-top boxes
    "opera/9\\.80 \\(linux (?:mips|armv)",
    // consoles
    "playstation",
    "\\bxbox",
    "nintendo",
    "\\bouya\\b",
    // wearables and headsets
    "watch ?os",
    "\\bwatch\\d",
    "wear ?os",
    "oculus",
    "meta quest",
    "like quest",
    "pico neo",
    "mobile vr\\b",
    // smart speakers and displays
    "\\bsonos\\b",
    "crestron"
  ].join("|"),
  "i"
)

// Case-sensitive model codes, so that ordinary words do not match: Amazon
// Fire TV sticks and boxes (AFTS, AFTMM), Echo Show displays (AEOCH), and
// Samsung Galaxy Watch (SM-R800).
const OTHER_DEVICE_CODE_PATTERN = /\bAFT[A-Z][A-Z0-9]*\b|\bAEO[A-Z]{2}\b|\bSM-R\d{3}/

// TV, set-top box, projector, watch and headset model names, tested against
// the Android model alone.
const OTHER_DEVICE_MODEL_PATTERN = new RegExp(
  [
    // "ASUS ZenWatch 2", "G Watch", "TicWatch Pro 5", "VR-1541F"
    "watch",
    "\\bvr\\b",
    // "HIPER MEDIA TV 6K", "Gazer_TV", "MagentaTV", but not Huawei's "BTV-W09"
    "(?:^|[^a-z]|[a-z]{3})tv(?![a-z])",
    // "ATV" is short for Android TV: "GT1-Mini-AT_ATV", "MyGica ATV495"
    "(?:^|[^a-z])atv",
    "nexus player",
    "projector",
    // "Telia box", "SberBox", "Smart Stick", "Telia Nordic STB", "A-STREAM",
    // but not the "RunboX6" phone
    "box(?![a-z\\d])",
    "\\bstick\\b",
    "\\bstb\\b",
    "\\bstream\\b",
    "\\b(?:[48]k|uhd)\\b",
    // panel names with the screen size: "SM-LED50M02SU", "H-LED65EU1311"
    "led\\d{2}",
    // models that start with the screen size in inches: "43LF8120T",
    // "32LEX-7127/TS2C", "NORDMENDE_43NM6000F", "HARPER 65Q850TS"
    "^(?:[a-z]+[ _-])?(?:2[2-9]|[3-9]\\d)[a-z]{1,4}[-_]?\\d"
  ].join("|"),
  "i"
)

// Tablet model names that bowser does not know, tested against the model
// alone. Android tablets often send "Mobile" anyway, and bowser calls every
// Huawei device a phone.
const TABLET_MODEL_PATTERN = new RegExp(
  [
    // "Galaxy Tab", "IdeaTab", "TAB950", but not "Tablet" or "stable"
    "tab(?![a-z])",
    "\\btablet\\b(?! pc)",
    // "MediaPad", "Redmi Pad SE", "Pad14", but not the Coolpad phone brand
    "(?<!cool)pad(?![a-z])",
    "kindle fire",
    "\\bnook\\b",
    "\\bxoom\\b",
    "\\bpixel (?:c|tablet)\\b",
    // Amazon Fire tablets: KFTT, KFTUWI
    "^KF[A-Z]{2,}$",
    // Samsung Galaxy Tab: SM-T510, SM-P610, SM-X200, GT-P5110
    "\\bSM-[PTX]\\d{3}",
    "\\bGT-P\\d{4}",
    // Lenovo Tab: TB-X605L, TB3-X70L, TB300FU
    "^(?:Lenovo )?TB(?:\\d?-|\\d{3}[A-Z])",
    // Huawei and Honor mark Wi-Fi-only models with -W and two digits
    // (AGS3-W09, BAH4-W09), and their Wi-Fi-only Android devices are tablets
    "^[A-Z]{3}\\d?-W\\d{2}",
    // generic "mobile internet device" tablets: MID7015A, MID1126
    "^MID\\d"
  ].join("|"),
  "i"
)

// Tablet markers that can be trusted anywhere in the UA: iPad and PlayBook,
// Amazon Fire codenames, Yandex's tablet builds ("YaSearchBrowser/22.113/apad")
// and Puffin's platform suffix ("Puffin/2.9737AT", T for tablet).
const TABLET_USER_AGENT_PATTERN = /\bipad\b|\bplaybook\b|kindle fire|\/apad\b|puffin\/[\d.]+[ai]t\b/i
const KINDLE_CODENAME_PATTERN = /\bKF[A-Z]{2,}\b/

// Phone platforms older than bowser's rules: feature phones (J2ME, BREW,
// MAUI), Windows CE and Windows Phone in desktop mode, Palm, Symbian.
const PHONE_PATTERN = new RegExp(
  [
    "\\bmidp\\b",
    "\\bcldc\\b",
    "j2me",
    "up\\.browser",
    "\\bbrew\\b",
    "\\bmaui\\b",
    "obigo",
    "netfront",
    "opera mini",
    "windows ce",
    "windows phone",
    "wpdesktop",
    "\\blumia\\b",
    "palm ?os",
    "palmsource",
    "symbian",
    "series ?60",
    "kaios",
    "puffin/[\\d.]+[ai]p\\b"
  ].join("|"),
  "i"
)

// Android apps on ChromeOS report the Chromebook as their device model.
const CHROMEBOOK_PATTERN = /chromebook/i

// Desktop systems that bowser 2.15 does not name, and desktop app UAs that
// carry the Mac model ("MacBookPro11,1") or the word "Desktop". Used only
// when bowser finds no platform.
const DESKTOP_PATTERN = new RegExp(
  [
    "\\bx11\\b",
    "bsd\\b",
    "\\bhaiku\\b",
    "amigaos",
    "\\birix",
    "\\bos/2\\b",
    "\\bsunos\\b",
    "cygwin",
    "\\bwin(?:dows|32|64|7|8|10|11)\\b",
    "macintosh",
    "\\bmac ?os\\b",
    "\\b(?:macbook|imac|macmini|macpro)",
    "\\bmac\\d+,\\d",
    "darwin/[\\d.]+ \\((?:x86_64|i386)\\)",
    "\\bdesktop\\b"
  ].join("|"),
  "i"
)

// ---------------------------------------------------------------------------
// Android model

// A locale as old Android browsers put it before the model: "en-us",
// "ru_RU", "zh-Hans-CN", "es-419".
const LOCALE_SOURCE = "[a-z]{2,3}(?:[-_][a-z]{4})?(?:[-_](?:[a-z]{2}|\\d{3}))?"
const LOCALE_PATTERN = new RegExp(`^${LOCALE_SOURCE}$`, "i")

// The device model in an Android UA, such as "SM-A105M" in
// "(Linux; Android 10; SM-A105M Build/QP1A.190711.020; wv)" or "Box Q" in
// "(Linux; U; Android 10; tr_TR; Box Q; Build/QTT8.201201.002)".
const ANDROID_MODEL_PATTERN = new RegExp(
  `\\bAndroid [\\d.]+;(?: ${LOCALE_SOURCE} ?;)? ([^;)]+?)(?: Build/[^;)]*)?(?=[;)])`,
  "di"
)

interface AndroidModel {
  readonly name: string
  readonly start: number
  readonly end: number
}

const findAndroidModel = (userAgent: string): AndroidModel | undefined => {
  const match = ANDROID_MODEL_PATTERN.exec(userAgent)
  const name = match?.[1]
  const span = match?.indices?.[1]
  if (name === undefined || span === undefined || LOCALE_PATTERN.test(name)) {
    return undefined
  }
  return { name, start: span[0], end: span[1] }
}

// Chrome 110+ reduces the Android part of its UA to "Android 10; K", so the
// model comes only from the sec-ch-ua-model hint.
const REDUCED_ANDROID_MODEL = "; K)"

// ---------------------------------------------------------------------------
// Client hints

/**
 * Returns the first value of a header that Node may have parsed into an
 * array, without the quotes of a structured-field string.
 */
const headerText = (value: HeaderValue): string | undefined => {
  const text = typeof value === "string" ? value : value?.[0]
  if (text === undefined) {
    return undefined
  }
  const trimmed = text.trim()
  return trimmed.length >= 2 && trimmed.startsWith("\"") && trimmed.endsWith("\"")
    ? trimmed.slice(1, -1)
    : trimmed
}

/**
 * Reads `sec-ch-ua-form-factors`, a structured-field list such as
 * `"Desktop"` or `"EInk", "Tablet"`, into one device kind.
 */
const deviceKindFromFormFactors = (header: string): DeviceKind | undefined => {
  const factors = new Set(
    header.split(",").map((item) => item.trim().replace(/^"|"$/g, "").toLowerCase())
  )
  if (factors.has("watch") || factors.has("xr") || factors.has("automotive")) {
    return "unknown"
  }
  if (factors.has("tablet")) {
    return "tablet"
  }
  if (factors.has("mobile")) {
    return "mobile"
  }
  if (factors.has("desktop")) {
    return "desktop"
  }
  return factors.has("eink") ? "unknown" : undefined
}

const hasHeadlessBrand = (hints: ClientHints): boolean =>
  HEADLESS_BRAND_PATTERN.test(headerText(hints["sec-ch-ua"]) ?? "") ||
  HEADLESS_BRAND_PATTERN.test(headerText(hints["sec-ch-ua-full-version-list"]) ?? "")

// ---------------------------------------------------------------------------
// Classification

const isOtherDevice = (userAgent: string, androidModel: AndroidModel | undefined): boolean =>
  OTHER_DEVICE_PATTERN.test(userAgent) ||
  OTHER_DEVICE_CODE_PATTERN.test(userAgent) ||
  (androidModel !== undefined && OTHER_DEVICE_MODEL_PATTERN.test(androidModel.name))

const isTablet = (userAgent: string, androidModel: AndroidModel | undefined): boolean =>
  (androidModel !== undefined && TABLET_MODEL_PATTERN.test(androidModel.name)) ||
  TABLET_USER_AGENT_PATTERN.test(userAgent) ||
  KINDLE_CODENAME_PATTERN.test(userAgent)

/**
 * Runs isbot on the UA without its Android model name, because bot words
 * inside a model name ("M bot 51", "Discovery Elite", "Radar Deluxe") make
 * isbot flag real phones.
 */
const isLibraryBot = (userAgent: string, androidModel: AndroidModel | undefined): boolean => {
  const checked = androidModel === undefined
    ? userAgent
    : userAgent.slice(0, androidModel.start) + "X" + userAgent.slice(androidModel.end)
  return isbot(checked)
}

/** Reads the device kind from the UA alone: this file's rules, then bowser. */
const deviceKindFromUserAgent = (userAgent: string): DeviceKind => {
  const androidModel = findAndroidModel(userAgent)
  if (isOtherDevice(userAgent, androidModel)) {
    return "unknown"
  }
  if (CHROMEBOOK_PATTERN.test(userAgent)) {
    return "desktop"
  }
  if (isTablet(userAgent, androidModel)) {
    return "tablet"
  }
  if (PHONE_PATTERN.test(userAgent)) {
    return "mobile"
  }

  const parser = Bowser.getParser(userAgent, true)
  const platformType = parser.getPlatformType(true)
  if (platformType === "tablet" && parser.getOSName(true) === "android" && !userAgent.includes("Safari/")) {
    // Android browsers leave out "Mobile" on tablets only. App and system
    // HTTP stacks (Dalvik, ExoPlayer, Cronet) leave it out on every device,
    // and most Android devices are phones.
    return "mobile"
  }
  switch (platformType) {
    case "desktop":
    case "mobile":
    case "tablet":
      return platformType
    case "tv":
      return "unknown"
    default:
      // bowser also reports "bot" for a few names isbot has already
      // cleared (any UA containing "yahoo", for one).
      return DESKTOP_PATTERN.test(userAgent) ? "desktop" : "unknown"
  }
}

/**
 * Applies the Chromium client hints on top of the UA. Form factors decide
 * outright. A model hint fills in the model that a reduced UA hides, and
 * `sec-ch-ua-mobile` with `sec-ch-ua-platform` decides the rest.
 */
const deviceKindWithHints = (userAgent: string, hints: ClientHints): DeviceKind => {
  const formFactors = headerText(hints["sec-ch-ua-form-factors"])
  const fromFormFactors = formFactors === undefined ? undefined : deviceKindFromFormFactors(formFactors)
  if (fromFormFactors !== undefined) {
    return fromFormFactors
  }

  const model = headerText(hints["sec-ch-ua-model"]) ?? ""
  const withModel = model !== "" && userAgent.includes(REDUCED_ANDROID_MODEL)
    ? userAgent.replace(REDUCED_ANDROID_MODEL, `; ${model})`)
    : userAgent
  const fromUserAgent = deviceKindFromUserAgent(withModel)
  if (fromUserAgent === "unknown") {
    return "unknown"
  }
  if (model !== "" && TABLET_MODEL_PATTERN.test(model)) {
    return "tablet"
  }

  const mobile = headerText(hints["sec-ch-ua-mobile"])
  const platform = headerText(hints["sec-ch-ua-platform"])?.toLowerCase() ?? ""
  if (mobile === "?1") {
    return "mobile"
  }
  if (mobile === "?0" && platform !== "") {
    // NOTE: a phone that requests the desktop site also sends ?0 with
    // platform "Android", and this counts it as a tablet.
    return platform === "android" || platform === "ios" ? "tablet" : "desktop"
  }
  return fromUserAgent
}

const classifyUncached = (userAgent: string, hints: ClientHints | undefined): Classification => {
  if (userAgent.trim() === "" || EXTRA_BOT_PATTERN.test(userAgent)) {
    return BOT
  }
  if (hints !== undefined && hasHeadlessBrand(hints)) {
    return BOT
  }
  // isbot's generic patterns (such as "Name/1.0;") also match TV browsers,
  // so a TV or console marker wins over them.
  const androidModel = findAndroidModel(userAgent)
  if (!isOtherDevice(userAgent, androidModel) && isLibraryBot(userAgent, androidModel)) {
    return BOT
  }
  const kind = hints === undefined ? deviceKindFromUserAgent(userAgent) : deviceKindWithHints(userAgent, hints)
  return BY_DEVICE_KIND[kind]
}

// ---------------------------------------------------------------------------
// Cache

// Most ingest traffic comes from a few hundred distinct UA strings, so a
// small LRU cache skips the regexes and bowser for repeats. Measured with
// Node 24.21 on a 2-core AMD EPYC VM: 15 to 20 us for a call that misses,
// and 0.5 to 0.7 us a call on a Zipf-weighted stream of 296 real browser UAs
// where nearly every call hits.
// Keys longer than CACHE_MAX_KEY_LENGTH are not cached, so the keys take at
// most about 8 MB (4096 keys of up to 1024 UTF-16 code units).
const CACHE_MAX_ENTRIES = 4096
const CACHE_MAX_KEY_LENGTH = 1024
const cache = new Map<string, Classification>()

const cacheKey = (userAgent: string, hints: ClientHints | undefined): string => {
  if (hints === undefined) {
    return userAgent
  }
  return [
    userAgent,
    headerText(hints["sec-ch-ua-mobile"]) ?? "",
    headerText(hints["sec-ch-ua-platform"]) ?? "",
    headerText(hints["sec-ch-ua-model"]) ?? "",
    headerText(hints["sec-ch-ua-form-factors"]) ?? "",
    hasHeadlessBrand(hints) ? "headless" : ""
  ].join("\n")
}

/**
 * Classifies a User-Agent header and its client hints. A missing or blank
 * UA counts as a bot, because every browser sends one and many scripts do
 * not.
 */
export const classifyUserAgent = (
  userAgent: string | undefined,
  clientHints?: ClientHints
): Classification => {
  const ua = userAgent ?? ""
  const key = cacheKey(ua, clientHints)
  if (key.length > CACHE_MAX_KEY_LENGTH) {
    return classifyUncached(ua, clientHints)
  }

  const cached = cache.get(key)
  if (cached !== undefined) {
    // Re-inserting moves the key to the end of the Map's insertion order,
    // so the first key is always the least recently used.
    cache.delete(key)
    cache.set(key, cached)
    return cached
  }

  const result = classifyUncached(ua, clientHints)
  if (cache.size >= CACHE_MAX_ENTRIES) {
    const oldest = cache.keys().next()
    if (oldest.done !== true) {
      cache.delete(oldest.value)
    }
  }
  cache.set(key, result)
  return result
}
