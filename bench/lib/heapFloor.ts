/**
 * Child process of the heap benchmark, the floor. It reads the visitors'
 * states that the actor child dumped, one JSON line each, and keeps each as
 * a flat plain object from `JSON.parse`, with fresh strings as a parser
 * makes them. The Map's key is the one of the actors' Map: tenant id,
 * property id and anonId joined with NUL characters. The child reads the
 * settled heap before and after.
 *
 * Usage: node --expose-gc bench/lib/heapFloor.ts --visitors N --result FILE --dump FILE
 */
import * as Fs from "node:fs"
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { type FlatVisitor, isFlatVisitor, settledHeap, writeChildResult } from "./heapProbe.ts"

const { values: options } = parseArgs({
  options: {
    visitors: { type: "string" },
    result: { type: "string" },
    dump: { type: "string" }
  }
})
const visitors = Number(options.visitors)
if (!Number.isInteger(visitors) || visitors <= 0) throw new Error(`invalid --visitors ${options.visitors}: expected an integer`)
if (options.result === undefined || options.dump === undefined) throw new Error("missing --result FILE or --dump FILE")
const resultFile = options.result
const dumpFile = options.dump

/** Builds the floor's Map from the dump. The file's text is garbage once this returns. */
const loadFloor = (file: string): Map<string, FlatVisitor> => {
  const floor = new Map<string, FlatVisitor>()
  for (const line of Fs.readFileSync(file, "utf8").split("\n")) {
    if (line === "") continue
    const record: unknown = JSON.parse(line)
    if (!isFlatVisitor(record)) throw new Error(`invalid dump line: ${line.slice(0, 200)}`)
    floor.set(`${record.tenantId}\u0000${record.propertyId}\u0000${record.anonId}`, record)
  }
  return floor
}

const main = async () => {
  const before = await settledHeap()
  const started = performance.now()
  const floor = loadFloor(dumpFile)
  const buildSeconds = (performance.now() - started) / 1000
  const after = await settledHeap()

  if (floor.size !== visitors) throw new Error(`the dump contains ${floor.size} visitors, expected ${visitors}`)
  writeChildResult(resultFile, { side: "floor", visitors, mapSize: floor.size, before, after, buildSeconds })
}

await main()
