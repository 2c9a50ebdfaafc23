/**
 * The heap benchmark's record: bytes per visitor from the children's heap
 * readings, the console summary, the JSON that `--quick --json` writes, and
 * the section of docs/benchmarks.md.
 */
import type { ChildResult, WorkloadFigures } from "./heapProbe.ts"
import type { MachineFacts } from "./processes.ts"
import { formatNumber, formatSummary, type Summary, summarize } from "./stats.ts"

/** Targets: the actors keep at most this many times the floor's bytes per visitor, and fewer than MAX_BYTES. */
export const MAX_RATIO = 2
export const MAX_BYTES = 2 * 1024

export interface HeapRecord {
  readonly command: string
  readonly date: Date
  readonly elapsedSeconds: number
  readonly commit: string
  readonly machine: MachineFacts
  readonly visitors: number
  readonly runs: ReadonlyArray<{ readonly actors: ChildResult; readonly floor: ChildResult }>
}

/** Growth of `heapUsed` over the build, per visitor. */
const bytesPerVisitor = (result: ChildResult) => (result.after.heapUsed - result.before.heapUsed) / result.visitors

const oldSpaceBytesPerVisitor = (result: ChildResult) =>
  (result.after.oldSpaceUsed - result.before.oldSpaceUsed) / result.visitors

interface Figures {
  readonly actors: Summary
  readonly floor: Summary
  /** Median of the actors divided by median of the floor. */
  readonly ratio: number
  readonly runRatios: Summary
  readonly ratioMet: boolean
  readonly bytesMet: boolean
}

const figuresOf = (record: HeapRecord): Figures => {
  const actors = summarize(record.runs.map((run) => bytesPerVisitor(run.actors)))
  const floor = summarize(record.runs.map((run) => bytesPerVisitor(run.floor)))
  const ratio = actors.median / floor.median
  return {
    actors,
    floor,
    ratio,
    runRatios: summarize(record.runs.map((run) => bytesPerVisitor(run.actors) / bytesPerVisitor(run.floor))),
    ratioMet: ratio <= MAX_RATIO,
    bytesMet: actors.median < MAX_BYTES
  }
}

/** Builds the object that `--json` writes, for the quick regression check. */
export const jsonRecord = (record: HeapRecord) => {
  const figures = figuresOf(record)
  return {
    name: "heap",
    ratios: { heap_per_visitor_vs_map: { value: round(figures.ratio, 3), better: "lower" } },
    figures: {
      visitors: record.visitors,
      runs: record.runs.length,
      actors_bytes_per_visitor: round(figures.actors.median, 1),
      floor_bytes_per_visitor: round(figures.floor.median, 1),
      actors_old_space_bytes_per_visitor: round(medianOver(record, (run) => oldSpaceBytesPerVisitor(run.actors)), 1),
      floor_old_space_bytes_per_visitor: round(medianOver(record, (run) => oldSpaceBytesPerVisitor(run.floor)), 1),
      target_max_ratio: MAX_RATIO,
      target_max_bytes_per_visitor: MAX_BYTES,
      ratio_target_met: figures.ratioMet,
      bytes_target_met: figures.bytesMet,
      elapsed_seconds: round(record.elapsedSeconds, 1)
    }
  }
}

export const renderConsole = (record: HeapRecord): string => {
  const figures = figuresOf(record)
  return [
    `visitors: ${formatNumber(record.visitors)}, runs: ${record.runs.length}`,
    `actors: ${formatSummary(figures.actors)} bytes per visitor`,
    `floor:  ${formatSummary(figures.floor)} bytes per visitor`,
    `ratio:  ${formatNumber(figures.ratio, 2)} (target at most ${MAX_RATIO}: ${metText(figures.ratioMet)}); ` +
    `actors under ${formatNumber(MAX_BYTES)} bytes: ${metText(figures.bytesMet)}`
  ].join("\n")
}

/** Renders the `## Heap per active visitor` section, without its markers. */
export const renderSection = (record: HeapRecord): string => {
  const figures = figuresOf(record)
  const machine = record.machine
  return `## Heap per active visitor

Command: \`${record.command}\`

Date: ${record.date.toISOString().slice(0, 16).replace("T", " ")} UTC; the whole run took ${formatNumber(record.elapsedSeconds)} s.

Code: commit ${record.commit}.

Machine: ${machine.cores} cores, ${machine.cpuModel}, ${machine.memoryGiB} GiB of memory, ${machine.kernel}, Node ${machine.nodeVersion}.

### What runs

${whatRuns(record.visitors)}

### Results

| figure (median of ${record.runs.length} runs, min–max) | visitor actors | floor |
| --- | --- | --- |
| retained heap per visitor, bytes | ${formatSummary(figures.actors)} | ${formatSummary(figures.floor)} |
| old-space growth per visitor, bytes | ${summaryOver(record, (run) => oldSpaceBytesPerVisitor(run.actors))} | ${summaryOver(record, (run) => oldSpaceBytesPerVisitor(run.floor))} |
| heap used before the build, MiB | ${summaryOver(record, (run) => mebibytes(run.actors.before.heapUsed), 1)} | ${summaryOver(record, (run) => mebibytes(run.floor.before.heapUsed), 1)} |
| heap used after the build, MiB | ${summaryOver(record, (run) => mebibytes(run.actors.after.heapUsed), 1)} | ${summaryOver(record, (run) => mebibytes(run.floor.after.heapUsed), 1)} |
| build time, s | ${summaryOver(record, (run) => run.actors.buildSeconds, 1)} | ${summaryOver(record, (run) => run.floor.buildSeconds, 1)} |

Per run, bytes per visitor (actors, floor, ratio): ${perRunText(record)}.

| target | figure | met |
| --- | --- | --- |
| at most ${MAX_RATIO} times the floor | ${formatNumber(figures.ratio, 2)} (per run ${formatNumber(figures.runRatios.min, 2)}–${formatNumber(figures.runRatios.max, 2)}) | ${metText(figures.ratioMet)} |
| under ${formatNumber(MAX_BYTES)} bytes (2 KiB) per visitor | ${formatNumber(figures.actors.median)} | ${metText(figures.bytesMet)} |

### Traffic

${workloadText(record)}

### Reading

${readingText(figures)}

${PROFILE_TEXT}
`
}

const whatRuns = (visitors: number) => `- An embedded PostgreSQL 18 in a temporary folder with the current migrations, because the
  actors' layer reloads the open sessions from the database when it is built. No row is written.
- Each run starts two child processes, one after the other, on the same Node binary with
  \`--expose-gc\`. Each reads \`process.memoryUsage().heapUsed\` before and after building its
  ${formatNumber(visitors)} visitors, each time after six full garbage collections of the "last-resort" flavour, which
  also drop V8's caches as a heap snapshot does. A figure is the growth divided by the visitors.
- Visitor actors (\`bench/lib/heapActors.ts\`): the service's own layers for configuration, database, SQL
  pool, \`Enrichment\` and \`VisitorActors\`. Each request goes through the steps of \`POST /v1/events\` up to the
  actor: \`JSON.parse\` of the tracker's body, \`validateEvent\`, \`Enrichment.enrich\` (keyed hashes, country,
  device, traffic source), then \`VisitorActors.track\` with the key that \`IngestPipeline\` builds. The event
  writer does not run, since it keeps nothing per visitor. Before the first reading, every user agent of the
  corpus is classified once, which fills the classifier's bounded cache, and 2,000 other visitors go through the
  pure steps to compile them.
- Traffic (\`bench/lib/corpus.ts\`): visitors one after another, each request one event as
  \`navigator.sendBeacon\` sends it, with a random client event id (UUID) as the tracker makes them. A visit
  lands from a search engine, social site or AI assistant (referrers from the Matomo lists), a campaign with UTM
  tags, another site or directly, and views 1 to 10 pages, each followed by a \`web_vitals\` event. Some visits
  add a \`cta_click\`, \`form_start\` and \`form_submit\`. User agents are real browsers from the Intoli sample,
  and 3% of visitors are crawlers.
- Floor (\`bench/lib/heapFloor.ts\`): the actor child writes each visitor's final state as one JSON line with
  the same fields, flat. The floor child parses each line with \`JSON.parse\`, so every string is a fresh copy
  as a parser makes it. It keeps each object in a Map under the same key as the actors' Map: tenant id,
  property id and anonId joined with NUL characters.`

const readingText = (figures: Figures) => {
  const verdict = figures.ratioMet && figures.bytesMet
    ? `That meets both targets, with ${formatNumber(MAX_BYTES - figures.actors.median)} bytes to spare under ` +
      `${formatNumber(MAX_BYTES)}.`
    : `That misses ${figures.ratioMet ? "" : `the target of ${MAX_RATIO} times the floor`}` +
      `${!figures.ratioMet && !figures.bytesMet ? " and " : ""}` +
      `${figures.bytesMet ? "" : `the target of ${formatNumber(MAX_BYTES)} bytes`}.`
  return `The visitor actors keep ${formatNumber(figures.actors.median)} bytes per visitor and the floor ` +
    `${formatNumber(figures.floor.median)}, so the actors use ${formatNumber(figures.ratio, 2)} times the floor. ` +
    `${verdict} The figure is an average over this traffic mix. The remembered client event ids grow with a ` +
    "visitor's events up to 32. By an estimate from the profile below, a visitor that sent 32 events or more " +
    "keeps about 2.3 KB in ids alone: 32 strings of 56 bytes and an array of 64 slots of 8 bytes."
}

/**
 * Breakdown of the bytes in one profiled run. It was measured once, not on
 * every run, so it names the code it was measured on.
 */
const PROFILE_TEXT = `Profile of the code at commit 5df5a41, from heap snapshots before and after the build of a quick run
(\`npx node bench/heap.ts --quick --json FILE --heap-snapshot DIR\`, 10,000 visitors, 1,895 bytes per visitor by the
snapshots' self sizes), per visitor:

- about 625 bytes in 11.2 strings of 36 characters, 56 bytes each: the 7 or so remembered client event ids, the
  session id, the exit page view's event id, and the anonId twice. A visitor that sent more than one request has one
  copy of its anonId in the actor's key and another in its session;
- about 310 bytes in three objects: the state, its key and the 22-field session;
- about 290 bytes in page URLs. \`Enrichment\` takes the path from \`URL.pathname\`, which Node 24 slices out of the
  whole URL. V8 keeps a slice of 13 characters or more as a reference into the string it came from. So a stored
  landing or exit path keeps the page URL and its query string alive, here up to about 300 characters with the
  \`_gl\` parameter;
- about 260 bytes in the array of remembered ids: each event copies it with a spread, which leaves room to grow, so
  an array of 7 ids has 26 slots;
- about 175 bytes for the Map: its 110-character key, which repeats the tenant and property ids, and its share of
  the hash table;
- about 100 bytes in other strings (referrers, short paths, referrer domains, UTM values) and 48 bytes in three
  timestamps stored as heap numbers;
- about 85 bytes in compiled code and in a V8-internal weak list of generator prototypes (\`Effect.gen\` creates a
  generator function per call). Both follow the code run and the calls made rather than the live visitors, so their
  share per visitor is smaller with more visitors.

The floor keeps the same strings without the duplicate anonId, the slack in the arrays and the page URLs, in one
object instead of three, but with its own copies of the tenant and property ids. Since both targets are met, none of
these costs was changed.`

const workloadText = (record: HeapRecord): string => {
  const workloads = record.runs.flatMap((run) => run.actors.workload === undefined ? [] : [run.actors.workload])
  const perVisitor = (figure: (workload: WorkloadFigures) => number, digits = 1) =>
    formatNumber(summarize(workloads.map((workload) => figure(workload) / record.visitors)).median, digits)
  return `Per visitor, median over the runs: ${perVisitor((workload) => workload.requests)} requests, ` +
    `${perVisitor((workload) => workload.events)} events, ${perVisitor((workload) => workload.pageViews)} page ` +
    `views, ${perVisitor((workload) => workload.recentClientEventIds)} client event ids remembered (at most 32), ` +
    `${perVisitor((workload) => workload.stringCharacters, 0)} characters in the strings of the state. ` +
    `${perVisitor((workload) => 100 * workload.visitorsWithReferrer, 0)}% of the visitors have a referrer and ` +
    `${perVisitor((workload) => 100 * workload.visitorsWithCampaign, 0)}% a UTM campaign.`
}

const perRunText = (record: HeapRecord) =>
  record.runs.map((run) => {
    const actors = bytesPerVisitor(run.actors)
    const floor = bytesPerVisitor(run.floor)
    return `${formatNumber(actors)}, ${formatNumber(floor)}, ${formatNumber(actors / floor, 2)}`
  }).join("; ")

const medianOver = (record: HeapRecord, figure: (run: HeapRecord["runs"][number]) => number) =>
  summarize(record.runs.map(figure)).median

const summaryOver = (record: HeapRecord, figure: (run: HeapRecord["runs"][number]) => number, digits = 0) =>
  formatSummary(summarize(record.runs.map(figure)), digits)

const mebibytes = (bytes: number) => bytes / 1024 ** 2
const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits
const metText = (met: boolean) => met ? "yes" : "no"
