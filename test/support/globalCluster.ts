/**
 * Vitest global setup: one embedded PostgreSQL 18 for the whole run, in a
 * temporary folder. Suites create their own databases on it (see
 * `testDatabase.ts`), so each starts from an empty schema without paying for
 * an initdb of its own.
 */
import { Effect, Exit, Redacted, Scope } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { TestProject } from "vitest/node"
import { startEmbeddedPostgres } from "../../src/services/EmbeddedPostgres.ts"
import { freePort } from "./ports.ts"

declare module "vitest" {
  export interface ProvidedContext {
    ownerUrl: string
  }
}

export default async function setup(project: TestProject) {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "porchlight-test-cluster-"))
  const scope = Effect.runSync(Scope.make())
  const port = await freePort()
  const cluster = await Effect.runPromise(
    startEmbeddedPostgres({ dataDir, port, superuserPassword: Redacted.make("test-superuser-password") }).pipe(
      Scope.provide(scope)
    )
  )
  project.provide("ownerUrl", Redacted.value(cluster.ownerUrl).href)
  return async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    Fs.rmSync(dataDir, { recursive: true, force: true })
  }
}
