/**
 * Writes one benchmark's section of docs/benchmarks.md. A section is
 * everything between the markers `<!-- bench:NAME:start -->` and
 * `<!-- bench:NAME:end -->`. A new run replaces it and leaves the other
 * benchmarks' sections alone. A missing section is appended.
 */
import * as Fs from "node:fs"

const FILE_HEADER = `# Benchmarks

Measured figures for Porchlight, one section per benchmark. Each section
names the command that produced it, the machine and the date. A benchmark
script rewrites only its own section, between its \`bench:NAME:start\` and
\`bench:NAME:end\` markers, and appends the section when it is missing.
`

export const writeSection = (file: string, name: string, section: string) => {
  const startMarker = `<!-- bench:${name}:start -->`
  const endMarker = `<!-- bench:${name}:end -->`
  const block = `${startMarker}\n${section.trimEnd()}\n${endMarker}`
  const current = Fs.existsSync(file) ? Fs.readFileSync(file, "utf8") : FILE_HEADER
  const start = current.indexOf(startMarker)
  const end = current.indexOf(endMarker)
  const next = start !== -1 && end > start
    ? `${current.slice(0, start)}${block}${current.slice(end + endMarker.length)}`
    : `${current.trimEnd()}\n\n${block}\n`
  Fs.writeFileSync(file, next)
}
