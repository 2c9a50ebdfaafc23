/**
 * `npm run cli -- COMMAND`: the operator's tool for tenants, properties and
 * API keys. It reads the same environment as the service (DATABASE_URL or
 * DATA_DIR) and works as the database owner.
 *
 * Exit codes: 0 on success, 1 when the command failed at run time (the
 * reason is one line on stderr), 2 on a usage error, 130 on Ctrl-C.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { Command } from "effect/cli"
import packageJson from "../package.json" with { type: "json" }
import { exitCodeOf, failureReport } from "./cli/Failures.ts"
import { keyCommand } from "./cli/KeyCommands.ts"
import { propertyCommand } from "./cli/PropertyCommands.ts"
import { tenantCommand } from "./cli/TenantCommands.ts"
import { INVOCATION, usageLayer } from "./cli/Usage.ts"

const porchlight = Command.make("porchlight").pipe(
  Command.withDescription(
    `Manage Porchlight tenants, properties and API keys. Run it as "${INVOCATION} COMMAND" from the project ` +
      "folder. It uses DATABASE_URL, or else the embedded PostgreSQL under DATA_DIR."
  ),
  Command.withSubcommands([tenantCommand, propertyCommand, keyCommand])
)

const program = Command.run(porchlight, { version: packageJson.version }).pipe(
  Effect.tapCause((cause) => {
    const report = failureReport(cause)
    return report === undefined ? Effect.void : Console.error(report)
  }),
  Effect.provide(usageLayer),
  Effect.provide(NodeServices.layer)
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => onExit(exitCodeOf(exit))
})
