/**
 * The lead benchmark's floor: its table, its INSERT statement, and the
 * server (`leadFloorServer.ts`) started as a child process.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import type pg from "pg"
import { type FloorServer, stopChild } from "./processes.ts"

export const LEAD_FLOOR_TABLE = "bench_lead_floor"

/**
 * Creates the floor's table: a plain table about as wide as `leads` (17
 * columns and a uuidv7 key, against 25 columns), with its primary key as the
 * only index and no row-level security.
 */
export const createLeadFloorTable = async (owner: pg.Client) => {
  await owner.query(`
    CREATE TABLE ${LEAD_FLOOR_TABLE} (
      id uuid PRIMARY KEY DEFAULT uuidv7(),
      tenant_id uuid NOT NULL,
      property_id uuid,
      email_normalized text NOT NULL,
      email_display text NOT NULL,
      consent_status text NOT NULL,
      express_consent_at timestamptz,
      consent_purpose text,
      form_name text NOT NULL,
      locale text,
      anon_id text,
      name text,
      company text,
      utm_source text,
      utm_medium text,
      utm_campaign text,
      first_captured_at timestamptz NOT NULL,
      last_captured_at timestamptz NOT NULL
    )`)
}

export const leadFloorInsert = (table: string) => `
  INSERT INTO ${table} (tenant_id, property_id, email_normalized, email_display, consent_status,
                        express_consent_at, consent_purpose, form_name, locale, anon_id, name, company,
                        utm_source, utm_medium, utm_campaign, first_captured_at, last_captured_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`

const SERVER_SCRIPT = fileURLToPath(new URL("./leadFloorServer.ts", import.meta.url))
const START_TIMEOUT_MS = 10_000

/** Starts the floor server on the embedded PostgreSQL and waits for its port. */
export const startLeadFloor = (options: {
  readonly postgresPort: number
  readonly superuserPassword: string
  readonly poolSize: number
}): Promise<FloorServer> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER_SCRIPT], {
      stdio: ["ignore", "pipe", "inherit"],
      env: {
        PATH: process.env["PATH"] ?? "/usr/bin:/bin",
        LEAD_FLOOR_PG_PORT: String(options.postgresPort),
        LEAD_FLOOR_PG_PASSWORD: options.superuserPassword,
        LEAD_FLOOR_POOL_SIZE: String(options.poolSize),
        LEAD_FLOOR_TABLE: LEAD_FLOOR_TABLE
      }
    })
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`the lead floor server did not print its port within ${START_TIMEOUT_MS} ms`))
    }, START_TIMEOUT_MS)
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`the lead floor server exited before it listened (code ${code}, signal ${signal})`))
    })
    child.stdout?.setEncoding("utf8")
    child.stdout?.once("data", (chunk: string) => {
      clearTimeout(timer)
      const port = Number(/"port":(\d+)/.exec(chunk)?.[1])
      if (child.pid === undefined || !Number.isInteger(port) || port <= 0) {
        child.kill("SIGKILL")
        reject(new Error(`the lead floor server printed no port: ${JSON.stringify(chunk.slice(0, 200))}`))
        return
      }
      resolve({ child, pid: child.pid, port, stop: () => stopChild(child) })
    })
  })
