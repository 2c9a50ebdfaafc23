/*! Porchlight tracker: first-party page views, clicks, form events and Core
 * Web Vitals, sent as beacons to a Porchlight service.
 * Embed: <script src="/porchlight.js" data-key="pk_..." defer></script>
 * Optional: data-endpoint="https://analytics.example.com" (default: the
 * origin this script was loaded from). Load /vendor/web-vitals.iife.js before
 * this script to have Core Web Vitals reported. */
(() => {
  "use strict"

  // The service accepts at most 50 events in one request.
  const MAX_BATCH = 50
  const ANON_ID_KEY = "porchlight_anon_id"
  const LEAD_PATH = "/v1/leads/capture"
  const UTM_FIELDS = ["source", "medium", "campaign", "term", "content"]

  if (window.porchlight) return

  // Do Not Track and Global Privacy Control: when the browser sends either
  // signal, the tracker sends nothing and stores nothing, and track() does
  // nothing. Forms still submit as plain HTML posts.
  if (navigator.doNotTrack === "1" || navigator.globalPrivacyControl === true) {
    window.porchlight = { track() {} }
    return
  }

  const script = document.currentScript || document.querySelector("script[data-key][src*='porchlight']")
  const key = script && script.getAttribute("data-key")
  if (!key) {
    console.warn("porchlight: the script tag has no data-key attribute, so no events are sent")
    window.porchlight = { track() {} }
    return
  }
  const endpoint = (script.getAttribute("data-endpoint") || new URL(script.src, location.href).origin).replace(/\/+$/, "")
  const eventsUrl = endpoint + "/v1/events"

  // crypto.randomUUID exists only in secure contexts (https, localhost).
  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID()
    const bytes = crypto.getRandomValues(new Uint8Array(16))
    bytes[6] = (bytes[6] & 0x0f) | 0x40 // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80 // RFC 9562 variant
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-")
  }

  // One random id per browser in localStorage. When storage is blocked, the
  // id lives for this page load only.
  function loadAnonId() {
    try {
      let id = localStorage.getItem(ANON_ID_KEY)
      if (!id || !/^[0-9a-f-]{36}$/i.test(id)) {
        id = uuid()
        localStorage.setItem(ANON_ID_KEY, id)
      }
      return id
    } catch {
      return uuid()
    }
  }
  const anonId = loadAnonId()

  const queue = []

  function currentPath() {
    return location.pathname + location.search
  }

  function readUtm() {
    const params = new URLSearchParams(location.search)
    const utm = {}
    for (const field of UTM_FIELDS) {
      const value = params.get("utm_" + field)
      if (value) utm[field] = value
    }
    return Object.keys(utm).length ? utm : undefined
  }

  function enqueue(eventType, props, referrer) {
    const event = { eventId: uuid(), anonId, eventType, path: currentPath(), timestamp: new Date().toISOString() }
    if (referrer) event.referrer = referrer
    const utm = readUtm()
    if (utm) event.utm = utm
    if (props) event.props = props
    queue.push(event)
    if (queue.length >= MAX_BATCH) flush()
    return event
  }

  // Sends the queue in batches. sendBeacon sends a string as
  // text/plain;charset=UTF-8, which needs no CORS preflight. When sendBeacon
  // is missing or returns false, fetch with keepalive sends the same body,
  // and a batch whose fetch fails goes back on the queue for the next flush
  // (eventId lets the service drop a batch it already has).
  function flush() {
    while (queue.length) {
      const batch = queue.splice(0, MAX_BATCH)
      const body = JSON.stringify({ key, events: batch })
      if (navigator.sendBeacon && navigator.sendBeacon(eventsUrl, body)) continue
      fetch(eventsUrl, { method: "POST", keepalive: true, body, headers: { "content-type": "text/plain;charset=UTF-8" } })
        .catch(() => queue.unshift(...batch))
    }
  }

  // Core Web Vitals of this page load, kept current by web-vitals'
  // reportAllChanges option so that they are ready whenever the page hides.
  const vitals = {}
  const VITALS = [["onTTFB", "ttfbMs", 1], ["onFCP", "fcpMs", 1], ["onLCP", "lcpMs", 1], ["onINP", "inpMs", 1], ["onCLS", "clsScore", 1e4]]
  const webVitals = window.webVitals
  if (webVitals) {
    for (const [register, prop, scale] of VITALS) {
      webVitals[register]((metric) => { vitals[prop] = Math.round(metric.value * scale) / scale }, { reportAllChanges: true })
    }
  }

  // State of the current page view. Engaged time counts milliseconds while
  // the page is visible and its window has focus.
  let pageViewId
  let pageViewPath
  // The referrer belongs to the page load, so only its first page view has it.
  let pendingReferrer = document.referrer
  let isLoadPageView = true
  let engagedMs = 0
  let clockStartedAt = 0
  let scrollDepth = 0
  let lastMetrics = ""

  function setClock(running) {
    const now = performance.now()
    if (clockStartedAt) engagedMs += now - clockStartedAt
    clockStartedAt = running ? now : 0
  }

  function isEngaged() {
    return document.visibilityState === "visible" && document.hasFocus()
  }

  function measureScroll() {
    const total = document.documentElement.scrollHeight
    const seen = total > 0 ? Math.round(((scrollY + innerHeight) / total) * 100) : 100
    scrollDepth = Math.max(scrollDepth, Math.min(100, seen))
  }

  // Queues one web_vitals event for the current page view, unless nothing
  // changed since the last one. Values are totals so far, so the latest
  // event for a pageViewId supersedes earlier ones.
  // NOTE: the vitals cover the whole page load and go only with its first
  // page view. Changes after an SPA navigation are not reported.
  function queueMetrics(clockRunning) {
    if (!pageViewId) return
    setClock(clockRunning)
    measureScroll()
    const props = { pageViewId, engagedTimeMs: Math.round(engagedMs), scrollDepthPercent: scrollDepth }
    if (isLoadPageView) Object.assign(props, vitals)
    const metrics = JSON.stringify(props)
    if (metrics === lastMetrics) return
    lastMetrics = metrics
    enqueue("web_vitals", props)
  }

  function pageView() {
    const path = currentPath()
    if (path === pageViewPath) return
    if (pageViewId) {
      queueMetrics(false)
      isLoadPageView = false
    }
    pageViewPath = path
    engagedMs = 0
    clockStartedAt = 0
    setClock(isEngaged())
    scrollDepth = 0
    measureScroll()
    lastMetrics = ""
    pageViewId = enqueue("page_view", undefined, pendingReferrer).eventId
    pendingReferrer = ""
  }

  // Chromium (seen in version 156) fires pagehide before visibilitychange when
  // a page unloads, and both call this. The clock stops at the first, so the
  // second queues another web_vitals event only when web-vitals reported a
  // change in between.
  function onHide() {
    queueMetrics(false)
    flush()
  }

  // web-vitals 6 listens for visibilitychange on window in the capture phase,
  // so this bubble-phase listener runs after it and sees its last values.
  addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") onHide()
    else setClock(isEngaged())
  })
  addEventListener("pagehide", onHide)
  addEventListener("focus", () => setClock(document.visibilityState === "visible"))
  addEventListener("blur", () => setClock(false))
  addEventListener("scroll", measureScroll, { passive: true })

  // A page restored from the back/forward cache is a new page load for
  // web-vitals, so it gets a fresh page view with its own vitals.
  // NOTE: untested, because pages driven by playwright-core in the tests never
  // came back from the back/forward cache.
  addEventListener("pageshow", (event) => {
    if (!event.persisted) return
    for (const prop in vitals) delete vitals[prop]
    pageViewId = undefined
    pageViewPath = undefined
    isLoadPageView = true
    pageView()
  })

  // history.replaceState is left alone, because routers use it to rewrite the
  // URL of the page already shown.
  const pushState = history.pushState
  history.pushState = function (...args) {
    const result = pushState.apply(this, args)
    pageView()
    return result
  }
  addEventListener("popstate", pageView)

  // Capture phase, so that a CTA whose own handler stops propagation still counts.
  document.addEventListener("click", (event) => {
    const cta = event.target instanceof Element && event.target.closest("[data-porchlight-cta]")
    if (cta) enqueue("cta_click", { cta: cta.getAttribute("data-porchlight-cta") })
  }, true)

  const startedForms = new WeakSet()
  document.addEventListener("input", (event) => {
    const form = event.target instanceof Element && event.target.closest("form[data-porchlight-form]")
    if (!form || startedForms.has(form)) return
    startedForms.add(form)
    enqueue("form_start", { formName: form.getAttribute("data-porchlight-form") })
  }, true)

  // Bubble phase, so that a form whose own handler cancelled the submit
  // (client-side validation, say) is not counted.
  document.addEventListener("submit", (event) => {
    const form = event.target
    if (event.defaultPrevented || !form.matches("form[data-porchlight-form]")) return
    const action = new URL(form.getAttribute("action") || "", location.href)
    const isLeadForm = action.pathname.endsWith(LEAD_PATH)
    if (isLeadForm) {
      event.preventDefault()
      // A second submit while the lead is being sent is dropped.
      if (form.getAttribute("aria-busy") === "true") return
    }
    const formName = form.getAttribute("data-porchlight-form")
    enqueue("form_submit", { formName })
    if (isLeadForm) sendLead(form, action.href, formName)
  })

  // Posts the lead form as JSON with the anonId, then goes to the page named
  // by data-porchlight-thanks (or clears the form when there is none). On any
  // failure it submits the form as the plain HTML post that works without
  // JavaScript, so the lead still reaches the service.
  async function sendLead(form, url, formName) {
    form.setAttribute("aria-busy", "true")
    const data = new FormData(form)
    const field = (name) => String(data.get(name) ?? "").trim()
    const lead = {
      key,
      email: field("email"),
      anonId,
      formName: field("formName") || formName,
      locale: field("locale") || document.documentElement.lang || navigator.language,
      website: String(data.get("website") ?? "")
    }
    if (field("name")) lead.name = field("name")
    if (field("company")) lead.company = field("company")
    if (data.get("consent") === "express") lead.consent = "express"
    if (field("consentText")) lead.consentText = field("consentText")
    try {
      const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(lead) })
      if (!response.ok) throw new Error(`lead capture failed with HTTP ${response.status}`)
    } catch {
      // The prototype's submit, in case a control named "submit" shadows form.submit.
      HTMLFormElement.prototype.submit.call(form)
      return
    }
    form.removeAttribute("aria-busy")
    const thanks = form.getAttribute("data-porchlight-thanks")
    if (thanks) location.assign(thanks)
    else form.reset()
  }

  // Keeps finite numbers and strings, and drops every other value.
  function flatProps(props) {
    const flat = {}
    for (const [name, value] of Object.entries(props || {})) {
      if (typeof value === "string" || (typeof value === "number" && isFinite(value))) flat[name] = value
    }
    return Object.keys(flat).length ? flat : undefined
  }

  window.porchlight = {
    track(eventType, props) {
      if (typeof eventType !== "string" || !eventType) throw new TypeError("porchlight.track: eventType must be a non-empty string")
      enqueue(eventType, flatProps(props))
    }
  }

  // A prerendered page counts only once the visitor actually opens it.
  // NOTE: the tests do not prerender, so this branch is untested.
  if (document.prerendering) document.addEventListener("prerenderingchange", pageView, { once: true })
  else pageView()
})()
