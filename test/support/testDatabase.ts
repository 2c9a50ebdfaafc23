/**
 * A fresh database on the shared test cluster, for one suite.
 */
import { Effect, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { inject } from "vitest"
import { ownerQuery, withOwnerClient } from "../../src/services/OwnerClient.ts"

export interface TestDatabase {
  readonly name: string
  readonly url: Redacted.Redacted<URL>
}

/** Creates an empty database with a random name and returns its owner URL. */
export const createTestDatabase = async (): Promise<TestDatabase> => {
  const clusterUrl = new URL(inject("ownerUrl"))
  const name = `t_${randomBytes(6).toString("hex")}`
  await Effect.runPromise(
    withOwnerClient(Redacted.make(clusterUrl), (client) => ownerQuery(client, `CREATE DATABASE ${name}`))
  )
  const url = new URL(clusterUrl.href)
  url.pathname = `/${name}`
  return { name, url: Redacted.make(url) }
}
