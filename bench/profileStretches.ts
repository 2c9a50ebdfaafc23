/**
 * Reads a V8 CPU profile (`node --cpu-prof`) and measures how long the
 * main thread stayed busy without a break: the stretches between idle
 * samples. A request that arrives during a stretch waits for its end, so
 * long stretches are what a latency tail is made of. Prints the spread of
 * stretch lengths and, for the stretches of at least MIN_MS, the functions
 * they spent their time in (inclusive shares).
 *
 * Usage: npx node bench/profileStretches.ts PROFILE.cpuprofile [MIN_MS]
 */
import * as Fs from "node:fs"

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly children?: ReadonlyArray<number>
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const [file, minArgument] = process.argv.slice(2)
if (file === undefined) {
  console.error("usage: npx node bench/profileStretches.ts PROFILE.cpuprofile [MIN_MS]")
  process.exit(1)
}
const minMs = Number(minArgument ?? 8)
const profile = JSON.parse(Fs.readFileSync(file, "utf8")) as Profile
const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
const parents = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id)

const label = (node: ProfileNode) => {
  const frame = node.callFrame
  const where = frame.url.replace(/.*node_modules\//, "").replace(/.*\/(src|bench)\//, "$1/")
  return `${frame.functionName === "" ? "(anonymous)" : frame.functionName} ${where}:${frame.lineNumber}`
}

interface Stretch {
  readonly start: number
  end: number
  readonly samples: Array<number>
}

const stretches: Array<Stretch> = []
let open: Stretch | undefined
let time = profile.startTime
profile.samples.forEach((id, index) => {
  time += profile.timeDeltas[index] ?? 0
  if (nodes.get(id)?.callFrame.functionName === "(idle)") {
    if (open !== undefined) stretches.push(open)
    open = undefined
    return
  }
  if (open === undefined) open = { start: time, end: time, samples: [] }
  open.end = time
  open.samples.push(id)
})
if (open !== undefined) stretches.push(open)

const lengths = stretches.map((stretch) => (stretch.end - stretch.start) / 1000).sort((a, b) => a - b)
const at = (share: number) => (lengths[Math.min(lengths.length - 1, Math.floor(lengths.length * share))] ?? 0).toFixed(2)
console.log(`busy stretches: ${lengths.length}; length p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, p99.9 ${at(0.999)} ms, max ${at(1)} ms`)

const long = stretches.filter((stretch) => (stretch.end - stretch.start) / 1000 >= minMs)
const shares = new Map<string, number>()
let sampled = 0
for (const stretch of long) {
  for (const id of stretch.samples) {
    sampled++
    const seen = new Set<string>()
    for (let current: number | undefined = id; current !== undefined; current = parents.get(current)) {
      const node = nodes.get(current)
      if (node === undefined) break
      const key = label(node)
      if (seen.has(key)) continue
      seen.add(key)
      shares.set(key, (shares.get(key) ?? 0) + 1)
    }
  }
}
console.log(`stretches of ${minMs} ms or more: ${long.length}; where their samples were (inclusive):`)
for (const [key, count] of [...shares].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
  console.log(`${((100 * count) / Math.max(1, sampled)).toFixed(1).padStart(5)}%  ${key}`)
}
