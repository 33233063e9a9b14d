/**
 * Generates docs/json.md from the Schema types the CLI encodes its `--json` output with, so the
 * document cannot drift from the code: test/jsonDocs.test.ts fails when the committed file differs.
 * Run `npm run docs:json` after changing a type.
 */
import * as JSONSchema from "effect/JSONSchema"
import type * as Schema from "effect/Schema"
import { AvailableReport } from "../src/domain/Catalog.js"
import { ErrorEnvelope } from "../src/domain/Failure.js"
import { InstallOllamaReport } from "../src/domain/InstallOllama.js"
import {
  Completion,
  EmbeddingLine,
  Embeddings,
  GenerateEvent,
  GenerateRequest,
  ConfigPathReport,
  ConfigReport,
  ModelInfo,
  ModelList,
  PullInterrupted,
  PsReport,
  PullProgress,
  RemoveResult,
  Reranking,
  StatusReport,
  VerifyReport
} from "../src/domain/Types.js"
import { Transcript } from "../src/domain/Transcript.js"

interface Section {
  readonly title: string
  readonly commands: string
  readonly schema: Schema.Schema<any, any>
  readonly notes: string
}

/** Every `--json` output of the CLI and the schema it is encoded with. */
export const sections: ReadonlyArray<Section> = [
  {
    title: "Errors",
    commands: "every command with `--json`",
    schema: ErrorEnvelope,
    notes:
      "On failure, one object on stdout; the exit code says the class (1 failure, 2 usage/config, 3 model not found, 4 backend unavailable, 130 interrupted, 143 terminated). `_tag` is the error class (`ModelNotFound`, `BackendUnavailable`, `InvalidModelSpec`, `ConfigError`, …)."
  },
  {
    title: "model status",
    commands: "`llmspell model status [--backend ollama|gguf|all] --json`",
    schema: StatusReport,
    notes: "One entry per configured instance. An unreachable backend is `available: false` with `error`; the command still exits 0, or 4 with `--check`."
  },
  {
    title: "model list",
    commands: "`llmspell model list [--backend ollama|gguf|all] --json`",
    schema: ModelList,
    notes: "Instances that could not answer are listed in `unavailable`; their failure never hides the other instances' models. With `--backend ollama|gguf` the named backend's failure is the command's (the error envelope, exit 4); with `all`, exit 4 only when every backend is down."
  },
  {
    title: "model info",
    commands: "`llmspell model info <spec> --json`",
    schema: ModelInfo,
    notes: "Fields a backend does not know are absent. `memory` is the estimated RAM/VRAM at the default context."
  },
  {
    title: "model pull (NDJSON)",
    commands: "`llmspell model pull <ref> --json`",
    schema: PullProgress,
    notes:
      "One JSON object per line on stdout, the same type for hub and Ollama pulls. Phases: `resolving`, `waiting` (another pull holds the lock), `downloading`, `verifying`, `done`. The last line of a successful pull has phase `done` and `result`. On failure the last line is the error envelope."
  },
  {
    title: "model pull, interrupted",
    commands: "`llmspell model pull <ref> --json`, stopped by Ctrl-C or SIGTERM",
    schema: PullInterrupted,
    notes:
      "The last NDJSON line of a pull that was interrupted (exit 130 for SIGINT, 143 for SIGTERM): where it stopped. The partial file is kept; the same pull resumes."
  },
  {
    title: "model remove",
    commands: "`llmspell model remove <spec> --yes --json`",
    schema: RemoveResult,
    notes: "`freedBytes` is absent when the backend does not report it."
  },
  {
    title: "model verify",
    commands: "`llmspell model verify [<spec>] --json`",
    schema: VerifyReport,
    notes: "`ok` is false (and the exit code 1) when any file is `missing` or `corrupt`."
  },
  {
    title: "model available",
    commands: "`llmspell model available [--recommended] --json`",
    schema: AvailableReport,
    notes: "The curated catalog; `fits` compares the estimated RAM need with the memory free now. Recommended and fitting models come first."
  },
  {
    title: "model install-ollama",
    commands: "`llmspell model install-ollama [--dry-run] [--yes] --json`",
    schema: InstallOllamaReport,
    notes: "What was found (installed version, whether the server answers), the plan's lines, and the installer command; `ran` is true only with `--yes`."
  },
  {
    title: "run",
    commands: "`llmspell run --model <spec> [prompt] --json`",
    schema: Completion,
    notes:
      "Printed once at the end. Times are milliseconds; `loadMs` is 0 when the model was already loaded. `reasoning` is the model's thinking (`--think`; a reasoning model may think by default, `--no-think` asks it not to); `toolCalls` are the tools it called (then `finishReason` is `tool-calls`). Without `--json`, `--schema FILE|JSON` and `--format json` print the answer's JSON value itself (checked against the schema; a non-conforming answer is the `SchemaViolation` error, exit 1; a schema keyword llmspell cannot check is `UnsupportedSchema`, exit 2)."
  },
  {
    title: "chat",
    commands: "`llmspell chat -m <spec> --json` (stdin: one message per line)",
    schema: Completion,
    notes:
      "NDJSON: one line per input message, in order, each the completion of that turn (the shape of `run --json`); the conversation is kept across lines. Lines that are commands (`/system`, `/set`, `/clear`, `/save`, …) and blank lines print nothing on stdout. The first turn that fails prints the error object and ends the run with its exit code. See docs/chat.md."
  },
  {
    title: "embed",
    commands: "`llmspell embed --model <spec> [text…] [--json]`",
    schema: Embeddings,
    notes: "One vector per input, in order (arguments, or one input per non-empty stdin line). `promptTokens` is the total over the inputs. The same text always gives the same vector, in a batch or alone."
  },
  {
    title: "embed (NDJSON)",
    commands: "`llmspell embed --model <spec> [text…] --ndjson`",
    schema: EmbeddingLine,
    notes: "One line per input as it is embedded (one request each), with its own token count."
  },
  {
    title: "rerank",
    commands: "`llmspell rerank --model <spec> --query <text> [document…] [--top <n>] [--file <jsonl>] --json`",
    schema: Reranking,
    notes: "Each document's `index` (its place in the input: arguments, `--file` lines, or non-empty stdin lines) and `relevanceScore`, best first (ties in input order), cut to `--top`. `promptTokens` is every query + document pair the model read (0 where a hosted provider does not say)."
  },
  {
    title: "ps",
    commands: "`llmspell ps --json`",
    schema: PsReport,
    notes: "The models loaded in memory now, on every instance (an instance that cannot answer is left out). `expiresAt` is absent for a model in use or kept loaded (a negative keep_alive). Embedded, that is what this process and the Ollama servers hold; a running `llmspell serve` holds the warm GGUF models. A GGUF model is one entry: its chat and embedding contexts (each loaded on first use) are listed in `contexts`, its `sizeBytes` and `activeRequests` are their sums, `sequences` are the chat context's, and `purpose` is `embedding` when only the embedding context is loaded; stopping it (`llmspell stop`, `keep_alive: 0`) unloads both."
  },
  {
    title: "Library: a generation request",
    commands: "`LocalLLM.generate` / `run`, the Promise facade's `run` / `stream` options, the @effect/ai adapter",
    schema: GenerateRequest,
    notes:
      "Not printed by the CLI: the request every backend takes, validated before anything runs (`InvalidRequest`, exit 2). A `tool` message answers the assistant tool call with the same `toolCallId`. `toolChoice`: `none` sends no tools; on Ollama, which ignores tool_choice, a named tool is the only one sent and `required`/named answers without a call fail with `ToolChoiceViolated`. `responseFormat` `json` or `{ schema }` becomes Ollama's `format`. A prompt Ollama truncated to its context (`prompt_eval_count` reaching the loaded `context_length`) fails with `ContextOverflow` at the end of the stream."
  },
  {
    title: "Library: generation events",
    commands: "`LocalLLM.generate`, `Backend.generate`",
    schema: GenerateEvent,
    notes: "Reasoning and text deltas and whole tool calls (params decoded JSON), then one `Finish` whose completion repeats the calls and the reasoning."
  },
  {
    title: "Chat transcript",
    commands: "the web page's Export / Import (`llmspell serve`), `llmspell chat`'s `/save FILE` and `--load FILE`",
    schema: Transcript,
    notes:
      "One conversation with one model (`src/domain/Transcript.ts`). `version` is 1; a newer version is refused by name. `system` and `parameters` are sent with every turn; `messages` are the turns after the system prompt: a `user` turn may carry `images` (base64 `data` with its `mediaType`, or a `path`), an `assistant` turn its `reasoning`, `toolCalls`, `finishReason` (`abort` when it was stopped) and `figures` (time to first token and totals in ms as the client saw them, tokens/s after the first token, prompt tokens with the cached part apart, completion tokens; each absent when unknown), a `tool` turn the result of the call named by `toolCallId`. `model` on a message names the spec that gave that answer when the conversation switched models."
  },
  {
    title: "config show",
    commands: "`llmspell config show --json`",
    schema: ConfigReport,
    notes: "Every effective value with its source: `default`, the file path, `env NAME` or `flag --name`. Secrets are `<redacted>`."
  },
  {
    title: "config path",
    commands: "`llmspell config path --json`",
    schema: ConfigPathReport,
    notes: "`file` is null when no config file was found; `searched` lists where llmspell looked, in order."
  }
]

type Json = { readonly [k: string]: any }

/** Renders a JSON Schema as a compact TypeScript-like type, easier to read than the schema itself. */
const typeOf = (node: Json, defs: Json, indent: string): string => {
  if (node["$ref"] !== undefined) return typeOf(defs[String(node["$ref"]).split("/").pop()!] ?? {}, defs, indent)
  if (node["enum"] !== undefined) return (node["enum"] as Array<unknown>).map((v) => JSON.stringify(v)).join(" | ")
  if (node["const"] !== undefined) return JSON.stringify(node["const"])
  if (node["anyOf"] !== undefined) return (node["anyOf"] as Array<Json>).map((n) => typeOf(n, defs, indent)).join(" | ")
  if (node["type"] === "array") return `Array<${typeOf(node["items"] ?? {}, defs, indent)}>`
  if (node["type"] === "object" && node["properties"] !== undefined && Object.keys(node["properties"]).length > 0) {
    const required = new Set<string>(node["required"] ?? [])
    const inner = indent + "  "
    const lines = Object.entries(node["properties"] as Record<string, Json>).map(([k, v]) => {
      const doc = v["description"] !== undefined ? `  // ${String(v["description"]).split("\n")[0]}` : ""
      return `${inner}${k}${required.has(k) ? "" : "?"}: ${typeOf(v, defs, inner)}${doc}`
    })
    return `{\n${lines.join("\n")}\n${indent}}`
  }
  if (node["type"] === "object") return "{ [key: string]: unknown }"
  if (node["type"] === "null") return "null"
  if (node["type"] === "integer") return "number"
  return typeof node["type"] === "string" ? node["type"] : "unknown"
}

/** The full text of docs/json.md. */
export const render = (): string => {
  const parts = [
    "# JSON output",
    "",
    "Every command accepts `--json` (anywhere on the command line). Output goes to stdout as one JSON document,",
    "or NDJSON for `model pull`; warnings and progress bars go to stderr. The shapes below are generated from",
    "the Schema types in `src/domain/Types.ts` and `src/domain/Protocol.ts` (`npm run docs:json`), and a test",
    "decodes the CLI's real output with the same schemas, so this page and the program cannot disagree.",
    "Optional fields are omitted, never `null`, unless the schema says `null`.",
    ""
  ]
  for (const s of sections) {
    const schema = JSONSchema.make(s.schema) as Json
    parts.push(`## ${s.title}`, "", s.commands, "", s.notes, "", "```ts", typeOf(schema, schema["$defs"] ?? {}, ""), "```", "")
  }
  return parts.join("\n")
}

if (process.argv[1] !== undefined && /jsonDocs\.ts$/.test(process.argv[1])) {
  const { writeFileSync } = await import("node:fs")
  writeFileSync(new URL("../docs/json.md", import.meta.url), render())
}
