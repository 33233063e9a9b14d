/**
 * `llmspell model remove <spec>`: deletes one model. Before anything is deleted it lists every file and the
 * bytes it frees; it asks only when stdin and stderr are terminals, and without a terminal it needs `--yes`.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { UsageError } from "../../../domain/Errors.js"
import { formatBytes } from "../../../domain/Format.js"
import * as HubRef from "../../../domain/HubRef.js"
import { RemoveResult } from "../../../domain/Types.js"
import { LocalLLM, type LocalLLMService } from "../../../services/LocalLLM.js"
import type { ResolvedModel } from "../../../services/ProviderRegistry.js"
import { CliIO } from "../../CliIO.js"
import { printErr, printJson, printOut } from "../../output.js"
import { json } from "../shared.js"

const spec = Args.text({ name: "spec" }).pipe(Args.withDescription("the model to remove (one model: a catalog alias names its default quantization)"))
const yes = Options.boolean("yes").pipe(Options.withAlias("y"), Options.withDescription("do not ask for confirmation"))

/** One line of what a remove would delete. */
interface Doomed {
  readonly path: string
  readonly sizeBytes: number | undefined
  /** Another model lists the file too: it stays. */
  readonly sharedWith?: string | undefined
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase()

/** The files the model occupies, as `model list` knows them; empty when it cannot tell (then remove decides). */
const removalPlan = (llm: LocalLLMService, resolved: ResolvedModel) =>
  Effect.gen(function*() {
    const listing = yield* llm.list(resolved.backend)
    const mine = listing.models.filter((m) => m.instance === resolved.instance.name)
    // For the GGUF store, an alias or `org/repo` names one canonical model (`org/repo:Q4_K_M`).
    const parsed = resolved.backend === "gguf" ? HubRef.parse(resolved.model) : undefined
    const canonical = parsed !== undefined && Either.isRight(parsed) ? HubRef.canonicalName(parsed.right) : undefined
    const entry = mine.find((m) => same(m.name, resolved.model)) ??
      (canonical !== undefined ? mine.find((m) => same(m.name, canonical)) : undefined)
    if (entry === undefined) return { model: resolved.model, files: [] as Array<Doomed>, sizeBytes: undefined }
    const fs = yield* FileSystem.FileSystem
    const files = yield* Effect.forEach(entry.files ?? [], (path) =>
      Effect.map(
        Effect.either(fs.stat(path)),
        (stat): Doomed => ({
          path,
          sizeBytes: Either.isRight(stat) ? Number(stat.right.size) : undefined,
          sharedWith: mine.find((m) => m !== entry && (m.files ?? []).includes(path))?.name
        })
      ))
    return { model: entry.name, files, sizeBytes: entry.sizeBytes }
  })

/** `model remove`. */
export const removeCommand = Command.make("remove", { spec, yes, json }, ({ json, spec, yes }) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    const io = yield* CliIO
    const resolved = yield* llm.resolve(spec)
    const plan = yield* removalPlan(llm, resolved)
    // Nothing known to delete: let remove itself say the model is not there (or delete its partial downloads).
    const known = plan.files.length > 0 || plan.sizeBytes !== undefined
    if (!yes && known) {
      if (!(io.stdinIsTTY && io.stderrIsTTY)) {
        return yield* new UsageError({
          reason: `not removing ${plan.model} from ${resolved.instance.name}: there is no terminal to confirm on`,
          suggestion: `confirm with --yes: \`llmspell model remove ${spec} --yes\``
        })
      }
      const freed = plan.files.length > 0
        ? plan.files.reduce((n, f) => n + (f.sharedWith === undefined ? f.sizeBytes ?? 0 : 0), 0)
        : plan.sizeBytes ?? 0
      const lines = plan.files.map((f) =>
        f.sharedWith !== undefined
          ? `  ${f.path} (kept: ${f.sharedWith} uses it too)`
          : `  ${f.path} (${f.sizeBytes !== undefined ? formatBytes(f.sizeBytes) : "size unknown"})`
      )
      yield* printErr([`${plan.model} on ${resolved.instance.name}:`, ...lines, `frees ${formatBytes(freed)}`].join("\n"))
      const ok = yield* io.confirm(`remove ${plan.model} from ${resolved.instance.name}?`)
      if (!ok) return yield* printErr("not removed")
    }
    const result = yield* llm.remove(spec)
    if (json) return yield* printJson(RemoveResult, result)
    yield* printOut(
      `removed ${result.model} from ${result.instance}${result.freedBytes !== undefined ? ` (${formatBytes(result.freedBytes)} freed)` : ""}`
    )
  })).pipe(Command.withDescription("remove one model (and its partial downloads); asks first on a terminal, --yes otherwise"))
