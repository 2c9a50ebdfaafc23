/**
 * Measures what one durable commit costs the disk under the system's temp
 * folder: an 8 KiB write followed by `fdatasync`, as PostgreSQL does for
 * each commit's WAL, repeated. The figure bounds what group commit can save
 * on this machine. Where a flush costs a tenth of a millisecond, one commit
 * per event is cheap, and batching gains little over it.
 *
 * Usage: npx node bench/fsync.ts
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const ROUNDS = 2_000
const BLOCK = Buffer.alloc(8_192, 1)

const folder = Fs.mkdtempSync(Path.join(Os.tmpdir(), "porchlight-fsync-"))
try {
  const file = Fs.openSync(Path.join(folder, "probe"), "w")
  const started = process.hrtime.bigint()
  for (let round = 0; round < ROUNDS; round++) {
    Fs.writeSync(file, BLOCK, 0, BLOCK.length, (round % 16) * BLOCK.length)
    Fs.fdatasyncSync(file)
  }
  const micros = Number(process.hrtime.bigint() - started) / 1000 / ROUNDS
  Fs.closeSync(file)
  console.log(`8 KiB write and fdatasync in ${Os.tmpdir()}: ${micros.toFixed(1)} µs each, over ${ROUNDS}`)
} finally {
  Fs.rmSync(folder, { recursive: true, force: true })
}
