/**
 * Command output on stdout: aligned tables for people, indented JSON for
 * scripts. Errors and notices go to stderr, never here.
 */
import { Console } from "effect"

/** Prints `value` as indented JSON. */
export const printJson = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

/** Prints rows under a header line, each column padded to its widest cell. */
export const printTable = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) => {
  const cells = [headers, ...rows].map((row) => row.map(printable))
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? "").length)))
  const lines = cells.map((row) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd())
  return Console.log(lines.join("\n"))
}

/** A timestamp to the second in UTC, or `-` when absent. */
export const formatTime = (time: Date | null): string =>
  time === null ? "-" : time.toISOString().replace(/\.\d{3}Z$/, "Z")

/** ISO 8601 for JSON output, or null when absent. */
export const isoTime = (time: Date | null): string | null => time === null ? null : time.toISOString()

/** Control characters in names would break the table layout, so they are shown as spaces. */
const printable = (text: string) => text.replace(/[\u0000-\u001f\u007f]/g, " ")
