/** `llmspell config show` and `llmspell config path`: the effective configuration and where it came from. */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import { ConfigPathReport, ConfigReport } from "../../domain/Types.js"
import * as ConfigLive from "../../layers/ConfigLive.js"
import { EffectiveConfig } from "../../services/EffectiveConfig.js"
import { GlobalOptions } from "../GlobalOptions.js"
import { printJson, printOut, table } from "../output.js"
import { json } from "./shared.js"

/** `config show`. */
export const configShowCommand = Command.make("show", { json }, ({ json }) =>
  Effect.gen(function*() {
    const config = yield* EffectiveConfig
    const report: ConfigReport = {
      file: config.file ?? null,
      entries: config.entries.map(({ key, source, value }) => ({ key, value, source })),
      warnings: [...config.warnings]
    }
    if (json) return yield* printJson(ConfigReport, report)
    yield* printOut(`config file: ${config.file ?? "none (built-in defaults)"}`)
    yield* printOut(
      table(["KEY", "VALUE", "SOURCE"], report.entries.map((e) => [e.key, typeof e.value === "string" ? e.value : JSON.stringify(e.value), e.source]))
    )
  })).pipe(Command.withDescription("print the effective configuration, each value with its source (secrets redacted)"))

/** `config path`. */
export const configPathCommand = Command.make("path", { json }, ({ json }) =>
  Effect.gen(function*() {
    const global = yield* GlobalOptions
    const where = yield* ConfigLive.withEnvironment({ configFile: global.configFile })
    const found = yield* ConfigLive.discover(where)
    const report: ConfigPathReport = {
      file: found?.path ?? null,
      searched: ConfigLive.candidates(where).map((c) => c.path)
    }
    if (json) return yield* printJson(ConfigPathReport, report)
    if (found !== undefined) return yield* printOut(`${found.path} (${found.origin})`)
    yield* printOut(`no config file found (using built-in defaults); looked in:\n  ${report.searched.join("\n  ")}`)
  })).pipe(Command.withDescription("print which config file is used, or that none is"))
