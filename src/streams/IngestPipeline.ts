/**
 * The ingest path after validation: each visitor's events go to that
 * visitor's actor, the resulting rows and the request's rejections go to the
 * writer, and the caller resumes once they are committed. When a write
 * fails, the visitors' actors are dropped so that their state is reloaded
 * from what the database really holds.
 */
import { Context, Effect, Layer } from "effect"
import type { EnrichedEvent, RejectionRow, VisitorKey } from "./IngestMessages.ts"
import { EventWriter, type WriteFailed } from "./EventWriter.ts"
import { VisitorActors } from "./VisitorActors.ts"

export interface IngestRequest {
  readonly tenantId: string
  readonly propertyId: string
  /** Accepted events grouped by anonId, each group in the order received. */
  readonly visitors: ReadonlyMap<string, ReadonlyArray<EnrichedEvent>>
  readonly rejections: ReadonlyArray<RejectionRow>
}

export interface IngestResult {
  /** Events stored, plus retries acknowledged without storing them again. */
  readonly accepted: number
  readonly duplicates: number
}

export interface IngestPipelineShape {
  readonly ingest: (request: IngestRequest) => Effect.Effect<IngestResult, WriteFailed>
}

export class IngestPipeline extends Context.Service<IngestPipeline, IngestPipelineShape>()(
  "porchlight/streams/IngestPipeline"
) {
  static readonly layer = Layer.effect(
    IngestPipeline,
    Effect.gen(function*() {
      const actors = yield* VisitorActors
      const writer = yield* EventWriter

      const ingest = (request: IngestRequest) =>
        Effect.gen(function*() {
          const size = [...request.visitors.values()].reduce((sum, events) => sum + events.length, 0)
          yield* writer.ensureCapacity(size + request.rejections.length)
          const keys: Array<VisitorKey> = []
          const writes = []
          let accepted = 0
          let duplicates = 0
          for (const [anonId, events] of request.visitors) {
            const key = { tenantId: request.tenantId, propertyId: request.propertyId, anonId }
            const step = yield* actors.track({ key, events })
            keys.push(key)
            writes.push(step.writes)
            accepted += events.length
            duplicates += step.duplicates
          }
          // An actor has applied events that were not written. Dropping it
          // makes its next message start from what the database contains, so
          // a retry of these events is stored instead of taken for a duplicate.
          yield* writer.submit({ tenantId: request.tenantId, writes, rejections: request.rejections }).pipe(
            Effect.tapError(() => actors.evict(keys))
          )
          return { accepted, duplicates }
        })

      return IngestPipeline.of({ ingest })
    })
  )
}
