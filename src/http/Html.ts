/**
 * Small server-rendered pages for people without JavaScript: a plain lead
 * form's error and confirmation pages. Every interpolated value goes through
 * `escapeHtml`.
 */
import { HttpServerResponse } from "effect/http"
import type { Language } from "../services/I18n.ts"

export const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (character) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[character] ?? character)

/** A complete page; `body` must already be escaped HTML. */
export const htmlPage = (options: {
  readonly language: Language
  readonly title: string
  readonly body: string
  readonly status?: number
}) =>
  HttpServerResponse.text(
    `<!doctype html>
<html lang="${options.language}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(options.title)}</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; padding: 0 1rem; color: #1b1f24; }
h1 { font-size: 1.5rem; }
a, button { color: #0b5cad; }
button { font: inherit; padding: .5rem 1rem; border: 1px solid #0b5cad; background: #fff; border-radius: .25rem; cursor: pointer; }
button:focus, a:focus { outline: 3px solid #f2a900; outline-offset: 2px; }
</style>
</head>
<body>
<main>
<h1>${escapeHtml(options.title)}</h1>
${options.body}
</main>
</body>
</html>
`,
    {
      status: options.status ?? 200,
      contentType: "text/html; charset=utf-8",
      headers: {
        "content-language": options.language,
        "cache-control": "no-store",
        "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        vary: "Accept-Language"
      }
    }
  )
