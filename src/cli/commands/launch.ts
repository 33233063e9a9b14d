/**
 * `llmspell launch <claude|codex|opencode> -m SPEC [--context N] [--dry-run] [-- agent args]`: runs
 * a coding agent on a model llmspell serves. It uses the running server (`--host`, LLMSPELL_HOST or
 * the state file, as every command finds it; `--local` skips it) or starts one in this process for
 * the agent's run (127.0.0.1, a free port, a key made for the run and kept in memory), points the
 * agent at it through the agent's own settings (`src/domain/Agents.ts`: variables, `-c` overrides,
 * a config file in a private temporary directory that names the key's variable rather than holding
 * it), checks that the model's context fits the agent's prompt, and runs the agent in the
 * foreground, ending with its exit code. `--dry-run` (or `--print-env`) shows what it would set,
 * keys redacted, and runs nothing.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { randomBytes } from "node:crypto"
import { accessSync, constants as fsConstants, statSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"
import { AGENT_NAMES, AGENTS, type AgentName, agentSetup, contextProblem, KEY_VARIABLE, shownEnv } from "../../domain/Agents.js"
import { UsageError } from "../../domain/Errors.js"
import type { ModelInfo } from "../../domain/Types.js"
import { ConfigEnvironment } from "../../layers/ConfigLive.js"
import { EffectiveConfig } from "../../services/EffectiveConfig.js"
import { LocalLLM, type LocalLLMService } from "../../services/LocalLLM.js"
import { configLayer, serverUrl } from "../AppLayer.js"
import { CliIO } from "../CliIO.js"
import { requestExitCode } from "../ExitStatus.js"
import { foreground } from "../foreground.js"
import { GlobalOptions } from "../GlobalOptions.js"
import { printJson, printOut } from "../output.js"
import { VERSION } from "../version.js"
import { json } from "./shared.js"

const agent = Args.choice(AGENT_NAMES.map((n) => [n, n] as const), { name: "agent" }).pipe(
  Args.withDescription("the coding agent: claude (Claude Code), codex (Codex) or opencode")
)
const model = Options.text("model").pipe(
  Options.withAlias("m"),
  Options.withPseudoName("spec"),
  Options.optional,
  Options.withDescription("the model the agent uses, as a llmspell spec (qwen3-coder@gguf, qwen2.5-coder:7b@ollama, …)")
)
const context = Options.integer("context").pipe(
  Options.withPseudoName("tokens"),
  Options.optional,
  Options.withDescription("run a GGUF model with this context size (a server launch starts; the agent's prompt must fit)")
)
const dryRun = Options.boolean("dry-run").pipe(
  Options.withAlias("print-env"),
  Options.withDescription("print what would be set (keys redacted) and the command, and run nothing")
)
const agentArgs = Args.text({ name: "agent-args" }).pipe(
  Args.repeated,
  Args.withDescription("arguments for the agent, after `--` (llmspell launch claude -m SPEC -- -p \"hello\")")
)

/**
 * The executable `name` on PATH (an absolute path), or undefined. On Windows, with PATHEXT's
 * extensions too (npm installs an agent there as `claude.cmd`).
 */
const onPath = (name: string, env: Readonly<Record<string, string | undefined>>): string | undefined => {
  const extensions = process.platform === "win32" ? ["", ...(env["PATHEXT"] ?? ".COM;.EXE;.BAT;.CMD").split(";").filter((e) => e !== "")] : [""]
  for (const dir of (env["PATH"] ?? env["Path"] ?? "").split(nodePath.delimiter)) {
    if (dir === "") continue
    for (const extension of extensions) {
      const candidate = nodePath.join(dir, name + extension)
      try {
        accessSync(candidate, fsConstants.X_OK)
        if (statSync(candidate).isFile()) return nodePath.resolve(candidate)
      } catch {
        // not here
      }
    }
  }
  return undefined
}

/** Ollama names with and without the default `:latest` tag are one model. */
const sameOllamaName = (a: string, b: string) => a.replace(/:latest$/, "") === b.replace(/:latest$/, "")

/** What `--dry-run --json` prints. */
const LaunchPlan = Schema.Struct({
  agent: Schema.String,
  binary: Schema.NullOr(Schema.String),
  installCommand: Schema.String,
  server: Schema.Struct({ url: Schema.String, started: Schema.Boolean }),
  model: Schema.String,
  contextSize: Schema.NullOr(Schema.Number),
  env: Schema.Record({ key: Schema.String, value: Schema.String }),
  unset: Schema.Array(Schema.String),
  args: Schema.Array(Schema.String),
  files: Schema.Record({ key: Schema.String, value: Schema.String })
})

/** A value as a POSIX shell word. */
const shellWord = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`)

/**
 * The context the model will run with and the one it was trained for (undefined: not known, not
 * checked), refusing a `--context` the backend cannot apply or the model was not trained for.
 */
const contextOf = (llm: LocalLLMService, info: ModelInfo, requested: number | undefined, startsServer: boolean, url: string | undefined) =>
  Effect.gen(function*() {
    const trained = info.contextLength
    if (info.backend === "gguf") {
      if (requested !== undefined) {
        if (!startsServer) {
          return yield* new UsageError({
            reason: `--context sizes a model in a server launch starts, but the running server at ${url} runs ${info.name} with its own context (${info.memory?.contextSize ?? "its context_size"})`,
            suggestion: "add --local to start a server for this run, or set context_size in that server's config and restart it"
          })
        }
        if (trained !== undefined && requested > trained) {
          return yield* new UsageError({
            reason: `--context ${requested} is more than ${info.name} was trained for (${trained} tokens)`,
            suggestion: `--context ${trained}, or a model trained for a longer context`
          })
        }
        return { runs: requested, trained }
      }
      return { runs: info.memory?.contextSize ?? (trained !== undefined ? Math.min(trained, 4096) : undefined), trained }
    }
    if (requested !== undefined) {
      return yield* new UsageError({
        reason: info.backend === "ollama"
          ? "--context sizes GGUF models; an Ollama server sizes its models' context itself"
          : `--context sizes GGUF models; ${info.name} runs in the provider's context`,
        suggestion: info.backend === "ollama" ? "start Ollama with OLLAMA_CONTEXT_LENGTH=<tokens> ollama serve" : "leave --context out"
      })
    }
    // Ollama: the context it has the model loaded with (/api/ps), else the trained one (what it will
    // load it with is its own setting); a cloud model runs in the provider's context, not checked
    if (info.backend !== "ollama") return { runs: undefined, trained }
    const loaded = (yield* llm.ps("ollama")).find((m) => m.instance === info.instance && sameOllamaName(m.name, info.name))
    return { runs: loaded?.contextLength ?? trained, trained }
  })

/** `launch`. */
export const launchCommand = Command.make(
  "launch",
  { agent, model, context, dryRun, json, agentArgs },
  (o) =>
    Effect.scoped(Effect.gen(function*() {
      const io = yield* CliIO
      const global = yield* GlobalOptions
      const { cwd, env } = yield* ConfigEnvironment
      const theAgent = AGENTS[o.agent as AgentName]
      const install = `npm install -g ${theAgent.npmPackage}`
      const spec = Option.getOrUndefined(o.model)
      if (spec === undefined || spec.trim() === "") {
        return yield* new UsageError({
          reason: `llmspell launch ${o.agent} needs the model to run ${theAgent.title} on: -m <spec>`,
          suggestion: `llmspell launch ${o.agent} -m <spec> (\`llmspell model list\` lists the models here)`
        })
      }
      const requested = Option.getOrUndefined(o.context)
      if (requested !== undefined && (requested < 32 || !Number.isSafeInteger(requested))) {
        return yield* new UsageError({ reason: `--context must be an integer ≥ 32; got ${requested}` })
      }
      const binary = onPath(theAgent.binary, env)
      if (binary === undefined && !o.dryRun) {
        return yield* new UsageError({
          reason: `${theAgent.title} is not installed here: no \`${theAgent.binary}\` on PATH`,
          suggestion: `install it with \`${install}\` (the npm package ${theAgent.npmPackage}), then run this again`
        })
      }

      // The server: a running one, or one started here for the agent's run.
      const running = yield* serverUrl
      const startsServer = running === undefined
      const runningKey = env[KEY_VARIABLE]
      const remote = running !== undefined
        ? Option.some(yield* Layer.build(
          Layer.unwrapEffect(Effect.map(Effect.promise(() => import("../../layers/LlmspellRemote.js")), (Remote) =>
            Remote.layer({ url: running, cwd, ...(runningKey !== undefined && runningKey !== "" ? { apiKey: runningKey } : {}) })))
        ))
        : Option.none()
      // --context: every GGUF instance runs its models with it (in this process's server only)
      const config = requested === undefined ? configLayer : Layer.effect(
        EffectiveConfig,
        Effect.map(EffectiveConfig, (c) => ({
          ...c,
          instances: c.instances.map((i) => (i.type === "gguf" ? { ...i, contextSize: requested } : i))
        }))
      ).pipe(Layer.provide(configLayer))
      const embedded = Option.isNone(remote)
        ? Option.some(yield* Layer.build(
          Layer.unwrapEffect(Effect.map(Effect.promise(() => import("../../layers/LlmspellLive.js")), (Live) => Live.layerWith(config)))
        ))
        : Option.none()
      const llm = Option.isSome(remote) ? Context.get(remote.value, LocalLLM) : Context.get(Option.getOrThrow(embedded), LocalLLM)

      const info = yield* llm.info(spec)
      const { runs, trained } = yield* contextOf(llm, info, requested, startsServer, running)
      const problem = contextProblem(theAgent, spec, runs, trained, info.backend === "ollama" ? "ollama" : startsServer ? "launch" : "running server")
      if (problem !== undefined) return yield* new UsageError({ reason: problem.reason, suggestion: problem.fix })

      // The key: the running server's (LLMSPELL_API_KEY), or one made for this run; agents need one
      // either way (Claude Code asks to log in without a token).
      const apiKey = running !== undefined ? (runningKey !== undefined && runningKey !== "" ? runningKey : "llmspell") : randomBytes(24).toString("base64url")
      const dir = o.dryRun ? "<temporary directory>" : yield* Effect.acquireRelease(
        Effect.promise(() => fs.mkdtemp(nodePath.join(os.tmpdir(), "llmspell-launch-"))),
        (d) => Effect.promise(() => fs.rm(d, { recursive: true, force: true }))
      )

      if (o.dryRun) {
        const url = running ?? "http://127.0.0.1:<port>"
        const setup = agentSetup(theAgent.name, { url, spec, contextSize: runs, apiKey }, dir)
        const plan = {
          agent: theAgent.name,
          binary: binary ?? null,
          installCommand: install,
          server: { url, started: startsServer },
          model: spec,
          contextSize: runs ?? null,
          env: shownEnv(setup),
          unset: [...setup.unset],
          args: [...setup.args, ...o.agentArgs],
          files: { ...setup.files }
        }
        if (o.json || global.json) return yield* printJson(LaunchPlan, plan)
        const lines = [
          `# ${theAgent.title} (${binary ?? `not installed: ${install}`}) on ${spec}` +
          (runs !== undefined ? ` (context ${runs})` : ""),
          startsServer
            ? "# through a llmspell serve started for the run (127.0.0.1, a free port, a key made for the run)"
            : `# through the running llmspell serve at ${url}`,
          ...Object.entries(plan.env).map(([k, v]) => `export ${k}=${shellWord(v)}`),
          ...plan.unset.map((k) => `unset ${k}`),
          ...Object.entries(plan.files).map(([name, text]) => `# ${dir}/${name}:\n${text.trimEnd().split("\n").map((l) => `#   ${l}`).join("\n")}`),
          [theAgent.binary, ...plan.args].map(shellWord).join(" ")
        ]
        return yield* printOut(lines.join("\n"))
      }

      let url = running
      if (url === undefined) {
        const Server = yield* Effect.promise(() => import("../../serve/Server.js"))
        const server = yield* Server.start({ host: "127.0.0.1", port: 0, apiKey: Redacted.make(apiKey), version: VERSION }).pipe(
          Effect.provide(Option.getOrThrow(embedded))
        )
        url = server.url
      }
      const setup = agentSetup(theAgent.name, { url, spec, contextSize: runs, apiKey }, dir)
      for (const [name, text] of Object.entries(setup.files)) {
        yield* Effect.promise(() => fs.writeFile(nodePath.join(dir, name), text, { mode: 0o600 }))
      }
      const childEnv: Record<string, string> = {}
      for (const [k, v] of Object.entries(env)) if (v !== undefined && !setup.unset.includes(k)) childEnv[k] = v
      Object.assign(childEnv, setup.env)
      yield* io.stderr(
        `llmspell launch: ${theAgent.title} on ${spec}${runs !== undefined ? ` (context ${runs})` : ""} through ${url}` +
          `${startsServer ? " (a server for this run)" : ""}\n`
      )
      const code = yield* runForeground(binary!, [...setup.args, ...o.agentArgs], { cwd, env: childEnv })
      yield* requestExitCode(code)
    }))
).pipe(Command.withDescription("run a coding agent (Claude Code, Codex, opencode) on a model llmspell serves"))

/**
 * Runs the agent with the terminal (stdin, stdout, stderr inherited) until it exits, and gives its
 * exit code (128 + the signal's number when a signal ended it, as a shell reports it). Not
 * interruptible: Ctrl-C is the agent's to handle (see `foreground.ts`); llmspell ends after it.
 */
const runForeground = (binary: string, args: ReadonlyArray<string>, options: { readonly cwd: string; readonly env: Record<string, string> }) =>
  Effect.uninterruptible(Effect.async<number, UsageError>((resume) => {
    import("node:child_process").then(({ spawn }) => {
      const child = spawn(binary, [...args], { cwd: options.cwd, env: options.env, stdio: "inherit" })
      foreground.child = child
      child.once("error", (e) => {
        foreground.child = undefined
        resume(Effect.fail(new UsageError({ reason: `could not start ${binary}: ${e.message}` })))
      })
      child.once("exit", (code, signal) => {
        foreground.child = undefined
        // set here, not after the wait: a signal that came meanwhile interrupts the command as soon
        // as the wait ends, and bin.ts then exits with this code
        const exitCode = code ?? 128 + (signal !== null ? (os.constants.signals[signal] ?? 0) : 0)
        foreground.exitCode = exitCode
        resume(Effect.succeed(exitCode))
      })
    }, (e) => resume(Effect.fail(new UsageError({ reason: `could not start ${binary}: ${String(e)}` }))))
  }))
