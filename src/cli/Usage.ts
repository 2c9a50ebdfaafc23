/**
 * Presenter for the CLI module's help and usage errors. Requested help goes
 * to stdout. A usage error goes to stderr as one line per problem, naming
 * the option and the expected form, followed by a hint to run --help.
 */
import { Console, Effect, Layer, Option } from "effect"
import { CliConfig, type CliError, CliOutput, GlobalFlag, type HelpDoc } from "effect/cli"

/** Command line that runs this tool from the project folder. */
export const INVOCATION = "npm run cli --"

const present = (event: CliOutput.Presenter.Event): Effect.Effect<void> => {
  switch (event._tag) {
    case "Help":
      // Implicit help means a command group was run without a command: a
      // usage error, so the help goes to stderr and the exit code is 2.
      return event.reason === "Requested"
        ? Console.log(CliOutput.defaultFormatter().formatHelpDoc(event.helpDoc))
        : Console.error(CliOutput.defaultFormatter({ colors: false }).formatHelpDoc(event.helpDoc))
    case "InvalidInvocation":
      return Effect.gen(function*() {
        for (const error of event.errors) {
          yield* Console.error(`error: ${usageMessage(error, event.helpDoc)}`)
        }
        yield* Console.error(`Run "${helpCommand(event.commandPath)}" for usage.`)
      })
    case "Version":
      return Console.log(`${event.name} ${event.version}`)
  }
}

const helpCommand = (commandPath: ReadonlyArray<string>) =>
  [INVOCATION, ...commandPath.slice(1), "--help"].join(" ")

/** Formats one parse or validation error as one line, in the words of this tool's help. */
export const usageMessage = (error: CliError.NonShowHelpErrors, help: HelpDoc.HelpDoc): string => {
  switch (error._tag) {
    case "UnknownSubcommand":
      return `unknown command "${error.subcommand}"${suggestion(error.suggestions)}`
    case "UnrecognizedOption":
      return `unknown option ${error.option}${suggestion(error.suggestions)}`
    case "MissingOption":
      return `missing required option --${error.option}${described(flagDescription(help, error.option))}`
    case "MissingArgument":
      return `missing argument ${error.argument}${described(argumentDescription(help, error.argument))}`
    case "UnexpectedArgument":
      return `unexpected argument ${error.arguments.map((value) => JSON.stringify(value)).join(", ")}`
    case "InvalidValue": {
      const expected = error.expected.replace(/^Expected:?\s*/, "")
      const name = error.kind === "flag" ? `--${error.option}` : error.option
      if (error.value !== "") return `invalid value ${JSON.stringify(error.value)} for ${name}. Expected ${expected}.`
      const description = error.kind === "flag" ? flagDescription(help, error.option) : Option.none()
      return `missing value for ${name}${Option.isSome(description) ? described(description) : `. Expected ${expected}.`}`
    }
    case "ValidationError":
    case "DuplicateOption":
    case "UserError":
      return error.message.split("\n")[0] ?? error.message
  }
}

const suggestion = (suggestions: ReadonlyArray<string>) =>
  suggestions.length === 0 ? "" : ` (did you mean ${suggestions.join(" or ")}?)`

const described = (description: Option.Option<string>) =>
  Option.match(description, { onNone: () => "", onSome: (text) => `: ${text}` })

const flagDescription = (help: HelpDoc.HelpDoc, name: string): Option.Option<string> =>
  help.flags.find((flag) => flag.name === name)?.description ?? Option.none()

const argumentDescription = (help: HelpDoc.HelpDoc, name: string): Option.Option<string> =>
  help.args?.find((argument) => argument.name === name)?.description ?? Option.none()

/**
 * The presenter above, with --help and --version as the only built-in flags.
 * The CLI module's wizard, completions and log-level flags are left out
 * because this tool does not support them.
 */
export const usageLayer = Layer.mergeAll(
  CliOutput.layerPresenter({ present }),
  CliConfig.layer({ builtIns: [GlobalFlag.Help, GlobalFlag.Version] })
)
