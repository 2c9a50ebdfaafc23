import { readFileSync } from "node:fs"
import type { IncomingHttpHeaders } from "node:http"
import { describe, expect, it } from "vitest"
import {
  classifyUserAgent,
  type Classification,
  type ClientHints
} from "../src/services/UserAgentClassifier.ts"

// Third-party vectors (Matomo Device Detector, uap-core, crawler-user-agents,
// top-user-agents, Intoli) sit in the shared folder next to the repository.
// Each file contains about 30% of its source set, and the rest is held back.
const TESTDATA = new URL("../../shared/testdata/", import.meta.url)

interface Vector {
  readonly ua: string
  readonly headers: Readonly<Record<string, unknown>> | undefined
  readonly expectedDeviceType: string | null | undefined
  readonly expectedBot: boolean | undefined
  readonly note: string | undefined
}

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const toVector = (row: unknown, file: string, index: number): Vector => {
  if (!isRecord(row) || typeof row["ua"] !== "string") {
    throw new Error(`${file}: vector ${index} has no "ua" string`)
  }
  const headers = row["headers"]
  const expectedDeviceType = row["expected_device_type"]
  const expectedBot = row["expected_bot"]
  const note = row["note"]
  // The crawler file marks its rows with expected: "bot" instead.
  let expectedBotFlag: boolean | undefined
  if (typeof expectedBot === "boolean") {
    expectedBotFlag = expectedBot
  } else if (row["expected"] === "bot") {
    expectedBotFlag = true
  }
  return {
    ua: row["ua"],
    headers: isRecord(headers) ? headers : undefined,
    expectedDeviceType: typeof expectedDeviceType === "string" || expectedDeviceType === null
      ? expectedDeviceType
      : undefined,
    expectedBot: expectedBotFlag,
    note: typeof note === "string" ? note : undefined
  }
}

const loadVectors = (file: string): ReadonlyArray<Vector> => {
  const parsed: unknown = JSON.parse(readFileSync(new URL(file, TESTDATA), "utf8"))
  if (!isRecord(parsed) || !Array.isArray(parsed["vectors"])) {
    throw new Error(`${file}: expected an object with a "vectors" array`)
  }
  return parsed["vectors"].map((row: unknown, index: number) => toVector(row, file, index))
}

// Matomo fixtures give client hints either as request headers in any case
// ("Sec-CH-UA-Mobile: ?1") or as the fields of the JavaScript
// navigator.userAgentData API ("mobile": "1", "model": "Tab 10"). The
// classifier takes lower-cased request headers, so both forms are converted.
const JS_HINT_HEADERS: Readonly<Record<string, string>> = {
  mobile: "sec-ch-ua-mobile",
  platform: "sec-ch-ua-platform",
  model: "sec-ch-ua-model"
}

const toClientHints = (headers: Readonly<Record<string, unknown>> | undefined): ClientHints | undefined => {
  if (headers === undefined) {
    return undefined
  }
  const hints: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== "string") {
      continue
    }
    const headerName = JS_HINT_HEADERS[name] ?? name.toLowerCase()
    if (name === "mobile") {
      hints[headerName] = value === "1" || value === "true" ? "?1" : "?0"
    } else if (name in JS_HINT_HEADERS) {
      hints[headerName] = `"${value}"`
    } else {
      hints[headerName] = value
    }
  }
  return hints
}

interface Score {
  readonly correct: number
  readonly total: number
}

const percent = (score: Score): string =>
  `${(100 * score.correct / score.total).toFixed(2)}% (${score.correct}/${score.total})`

const ratio = (score: Score): number => score.correct / score.total

/** Scores device type on the rows that have one, and the bot flag on all rows. */
const scoreFile = (vectors: ReadonlyArray<Vector>) => {
  let deviceCorrect = 0
  let deviceTotal = 0
  let botCorrect = 0
  let botTotal = 0
  let notedRows = 0
  for (const vector of vectors) {
    const result = classifyUserAgent(vector.ua, toClientHints(vector.headers))
    if (vector.expectedBot !== undefined) {
      botTotal += 1
      botCorrect += result.isBot === vector.expectedBot ? 1 : 0
    }
    // Rows with a note cannot be classified from the string alone, such as
    // iPads in desktop mode that send a Mac UA, so only their bot flag counts.
    if (vector.note !== undefined) {
      notedRows += 1
      continue
    }
    if (typeof vector.expectedDeviceType === "string") {
      deviceTotal += 1
      deviceCorrect += result.deviceType === vector.expectedDeviceType ? 1 : 0
    }
  }
  return {
    device: { correct: deviceCorrect, total: deviceTotal },
    bot: { correct: botCorrect, total: botTotal },
    notedRows
  }
}

const report = (file: string, line: string): void => {
  console.log(`${file}: ${line}`)
}

describe("classifyUserAgent on third-party vectors", () => {
  for (const file of ["ua_humans_top_user_agents.json", "ua_humans_intoli_user_agents.json"]) {
    it(`gets every human device type right in ${file}`, () => {
      const score = scoreFile(loadVectors(file))
      report(file, `device type ${percent(score.device)}, not bot ${percent(score.bot)}, noted rows skipped ${score.notedRows}`)

      expect(score.device.total).toBeGreaterThan(0)
      expect(score.device.correct).toBe(score.device.total)
      expect(score.bot.correct).toBe(score.bot.total)
    })
  }

  it("flags at least 99% of crawler UAs as bots", () => {
    const file = "ua_bots_crawler_user_agents.json"
    const score = scoreFile(loadVectors(file))
    report(file, `bot ${percent(score.bot)}`)

    expect(score.bot.total).toBeGreaterThan(0)
    expect(ratio(score.bot)).toBeGreaterThanOrEqual(0.99)
  })

  for (const file of ["ua_device_uap_core.json", "ua_device_matomo.json"]) {
    it(`gets at least 90% of device types right in ${file}`, () => {
      const score = scoreFile(loadVectors(file))
      report(file, `device type ${percent(score.device)}`)

      expect(score.device.total).toBeGreaterThan(0)
      expect(ratio(score.device)).toBeGreaterThanOrEqual(0.9)
    })
  }
})

const CHROME_DESKTOP =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
const CHROME_ANDROID_REDUCED_PHONE =
  "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"
const CHROME_ANDROID_REDUCED_TABLET =
  "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"

const BOT: Classification = { deviceType: "bot", isBot: true }
const DESKTOP: Classification = { deviceType: "desktop", isBot: false }
const MOBILE: Classification = { deviceType: "mobile", isBot: false }
const TABLET: Classification = { deviceType: "tablet", isBot: false }
const UNKNOWN: Classification = { deviceType: "unknown", isBot: false }

interface HandCase {
  readonly name: string
  readonly userAgent: string | undefined
  readonly hints?: ClientHints
  readonly expected: Classification
}

const HAND_CASES: ReadonlyArray<HandCase> = [
  {
    name: "headless Chrome is a bot",
    userAgent:
      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
    expected: BOT
  },
  {
    name: "HeadlessChrome brand hint is a bot",
    userAgent: CHROME_DESKTOP,
    hints: { "sec-ch-ua": "\"HeadlessChrome\";v=\"124\", \"Chromium\";v=\"124\"" },
    expected: BOT
  },
  {
    name: "PhantomJS is a bot",
    userAgent:
      "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
    expected: BOT
  },
  {
    name: "Puppeteer marker is a bot",
    userAgent: `${CHROME_DESKTOP} Puppeteer`,
    expected: BOT
  },
  { name: "curl is a bot", userAgent: "curl/8.5.0", expected: BOT },
  { name: "wget is a bot", userAgent: "Wget/1.21.4", expected: BOT },
  { name: "python-requests is a bot", userAgent: "python-requests/2.31.0", expected: BOT },
  { name: "okhttp is a bot", userAgent: "okhttp/4.12.0", expected: BOT },
  { name: "Go HTTP client is a bot", userAgent: "Go-http-client/2.0", expected: BOT },
  { name: "Java HTTP client is a bot", userAgent: "Java/17.0.9", expected: BOT },
  { name: "Dart HTTP client is a bot", userAgent: "Dart/3.3 (dart:io)", expected: BOT },
  {
    name: "Slackbot link preview is a bot",
    userAgent: "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    expected: BOT
  },
  {
    name: "Facebook link preview is a bot",
    userAgent: "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    expected: BOT
  },
  {
    name: "Discord link preview is a bot",
    userAgent: "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    expected: BOT
  },
  { name: "empty UA is a bot", userAgent: "", expected: BOT },
  { name: "missing UA is a bot", userAgent: undefined, expected: BOT },
  { name: "blank UA is a bot", userAgent: "   ", expected: BOT },
  { name: "Windows Chrome is desktop", userAgent: CHROME_DESKTOP, expected: DESKTOP },
  {
    name: "iPhone Safari is mobile",
    userAgent:
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    expected: MOBILE
  },
  {
    name: "iPad Safari is tablet",
    userAgent:
      "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    expected: TABLET
  },
  {
    name: "Galaxy Tab sending Mobile is tablet",
    userAgent:
      "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    expected: TABLET
  },
  { name: "reduced Android UA with Mobile is mobile", userAgent: CHROME_ANDROID_REDUCED_PHONE, expected: MOBILE },
  {
    name: "Android hints with mobile ?0 are tablet",
    userAgent: CHROME_ANDROID_REDUCED_TABLET,
    hints: { "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": "\"Android\"" },
    expected: TABLET
  },
  {
    name: "tablet model hint beats mobile ?1",
    userAgent: CHROME_ANDROID_REDUCED_PHONE,
    hints: { "sec-ch-ua-mobile": "?1", "sec-ch-ua-platform": "\"Android\"", "sec-ch-ua-model": "\"SM-X710\"" },
    expected: TABLET
  },
  {
    name: "phone model hint keeps mobile",
    userAgent: CHROME_ANDROID_REDUCED_PHONE,
    hints: { "sec-ch-ua-mobile": "?1", "sec-ch-ua-platform": "\"Android\"", "sec-ch-ua-model": "\"Pixel 8\"" },
    expected: MOBILE
  },
  {
    name: "Tablet form factor hint is tablet",
    userAgent: CHROME_ANDROID_REDUCED_PHONE,
    hints: { "sec-ch-ua-form-factors": "\"Tablet\"" },
    expected: TABLET
  },
  {
    name: "Watch form factor hint is unknown",
    userAgent: CHROME_ANDROID_REDUCED_PHONE,
    hints: { "sec-ch-ua-form-factors": "\"Watch\"" },
    expected: UNKNOWN
  },
  {
    name: "Windows hints on an iPhone UA are desktop",
    userAgent:
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
    hints: { "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": "\"Windows\"" },
    expected: DESKTOP
  },
  {
    name: "Tizen smart TV is unknown",
    userAgent:
      "Mozilla/5.0 (SMART-TV; LINUX; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) 108.0.5359.1/7.0 TV Safari/537.36",
    expected: UNKNOWN
  },
  {
    name: "Android TV box is unknown",
    userAgent:
      "Mozilla/5.0 (Linux; Android 11; AFTKA Build/RS8101.1849N; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36",
    expected: UNKNOWN
  },
  {
    name: "PlayStation 5 is unknown",
    userAgent: "Mozilla/5.0 (PlayStation 5/SmartTV) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    expected: UNKNOWN
  },
  {
    name: "bot word in a phone model is not a bot",
    userAgent:
      "Mozilla/5.0 (Linux; Android 7.0; M bot 51) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 Mobile Safari/537.36",
    expected: MOBILE
  }
]

describe("classifyUserAgent on hand-written cases", () => {
  for (const handCase of HAND_CASES) {
    it(handCase.name, () => {
      expect(classifyUserAgent(handCase.userAgent, handCase.hints)).toEqual(handCase.expected)
    })
  }

  it("accepts Node request headers as hints", () => {
    const headers: IncomingHttpHeaders = {
      "user-agent": CHROME_ANDROID_REDUCED_TABLET,
      "sec-ch-ua-mobile": "?0",
      "sec-ch-ua-platform": "\"Android\""
    }

    expect(classifyUserAgent(headers["user-agent"], headers)).toEqual(TABLET)
  })

  it("returns the same result from the cache", () => {
    const userAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"

    const first = classifyUserAgent(userAgent)
    const second = classifyUserAgent(userAgent)

    expect(second).toEqual(first)
    expect(second).toEqual(DESKTOP)
  })

  it("keys the cache on the hints too", () => {
    const android = "\"Android\""

    const phone = classifyUserAgent(CHROME_ANDROID_REDUCED_TABLET, { "sec-ch-ua-mobile": "?1", "sec-ch-ua-platform": android })
    const tablet = classifyUserAgent(CHROME_ANDROID_REDUCED_TABLET, { "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": android })

    expect(phone).toEqual(MOBILE)
    expect(tablet).toEqual(TABLET)
  })

  it("classifies UAs too long to cache", () => {
    const longUserAgent = `${CHROME_DESKTOP} ${"x".repeat(2000)}`

    expect(classifyUserAgent(longUserAgent)).toEqual(DESKTOP)
    expect(classifyUserAgent(longUserAgent)).toEqual(DESKTOP)
  })
})
