/**
 * `llmspell rerank -m <spec> --query <text> [doc…]`: orders documents by their relevance to the
 * query with a reranker model. Documents are the arguments, else `--file` (JSON Lines: each line
 * a JSON string or an object with `text`), else one per line of stdin. Prints a table best first
 * (rank, score, the document's index in the input, its start), cut to `--top N`; with `--json`,
 * the `Reranking` (indexes and scores, best first, tokens read).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { readFile } from "node:fs/promises"
import { UsageError } from "../../domain/Errors.js"
import { Reranking } from "../../domain/Types.js"
import { LocalLLM } from "../../services/LocalLLM.js"
import { CliIO } from "../CliIO.js"
import { printJson, printOut, sanitizeForTerminal, table } from "../output.js"
import { json } from "./shared.js"

const model = Options.text("model").pipe(Options.withAlias("m"), Options.withDescription("reranker model spec"))
const query = Options.text("query").pipe(Options.withAlias("q"), Options.withDescription("the query the documents are ranked against"))
const top = Options.integer("top").pipe(Options.withPseudoName("n"), Options.optional, Options.withDescription("show only the best N documents"))
const file = Options.text("file").pipe(
  Options.optional,
  Options.withDescription("read the documents from a JSON Lines file: each line a JSON string or an object with \"text\"")
)
const documents = Args.text({ name: "document" }).pipe(
  Args.repeated,
  Args.withDescription("documents to rank (default: --file, else one per stdin line)")
)

const EXAMPLE = "e.g. `llmspell rerank -m jina/jina-reranker-v2-base-multilingual --query \"what is a cat\" \"cats purr\" \"dogs bark\"`"

/** The documents of a JSON Lines text: a string, or an object with a string `text`, per non-empty line. */
export const documentsOfJsonl = (text: string, name: string): Effect.Effect<Array<string>, UsageError> =>
  Effect.suspend(() => {
    const out: Array<string> = []
    const lines = text.split(/\r?\n/)
    for (const [i, line] of lines.entries()) {
      if (line.trim() === "") continue
      let value: unknown
      try {
        value = JSON.parse(line)
      } catch (e) {
        return Effect.fail(
          new UsageError({ reason: `--file ${name}: line ${i + 1} is not JSON (${(e as Error).message})`, suggestion: EXAMPLE })
        )
      }
      const doc = typeof value === "string"
        ? value
        : typeof value === "object" && value !== null && typeof (value as { text?: unknown }).text === "string"
        ? (value as { text: string }).text
        : undefined
      if (doc === undefined) {
        return Effect.fail(
          new UsageError({
            reason: `--file ${name}: line ${i + 1} is neither a JSON string nor an object with a string "text"`,
            suggestion: "write one document a line: \"text\" or {\"text\": \"…\"}"
          })
        )
      }
      out.push(doc)
    }
    return Effect.succeed(out)
  })

/** A document's start on one line, for the table. */
const preview = (text: string, width: number) => {
  const flat = sanitizeForTerminal(text.replace(/\s+/g, " ").trim())
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat
}

/** `rerank`. */
export const rerankCommand = Command.make("rerank", { model, query, top, file, documents, json }, (o) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    const io = yield* CliIO
    if (o.documents.length > 0 && Option.isSome(o.file)) {
      return yield* new UsageError({ reason: "pass documents as arguments or with --file, not both", suggestion: EXAMPLE })
    }
    const path = Option.getOrUndefined(o.file)
    const docs = o.documents.length > 0
      ? o.documents
      : path !== undefined
      ? yield* Effect.flatMap(
        Effect.tryPromise({
          try: () => readFile(path, "utf8"),
          catch: (error) =>
            new UsageError({
              reason: `--file: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
              suggestion: EXAMPLE
            })
        }),
        (text) => documentsOfJsonl(text, path)
      )
      : io.stdinIsTTY
      ? []
      : (yield* io.readStdin).split(/\r?\n/).filter((line) => line.length > 0)
    if (docs.length === 0) {
      return yield* new UsageError({
        reason: "nothing to rank: pass documents as arguments, with --file (JSON Lines), or one per line on stdin",
        suggestion: EXAMPLE
      })
    }
    const result = yield* llm.rerank(o.model, {
      query: o.query,
      documents: docs,
      ...(Option.isSome(o.top) ? { topN: o.top.value } : {})
    })
    if (o.json) return yield* printJson(Reranking, result)
    yield* printOut(table(
      ["RANK", "SCORE", "INDEX", "DOCUMENT"],
      result.results.map((r, rank) => [rank + 1, r.relevanceScore.toFixed(4), r.index, preview(docs[r.index] ?? "", 72)])
    ))
  })).pipe(Command.withDescription("order documents by relevance to a query with a reranker model: a table best first (or --json)"))
