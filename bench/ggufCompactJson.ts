/**
 * What compact grammar-forced JSON saves (issue 19 item 3): output tokens of a forced tool call and
 * of a schema answer under node-llama-cpp's own JSON grammar (indentation and spaces allowed, four
 * newlines to stop) against llmspell's narrowed one (`narrowJsonGrammar`: no free whitespace, the
 * document ends at its last character), same model, same 20 seeds, one run. A generated model with
 * a 2,000-token byte-level vocabulary: a real vocabulary merges runs of whitespace, so it saves less.
 * Run: `node --import tsx bench/ggufCompactJson.ts`.
 */
import { getLlama, LlamaChat, resolveChatWrapper } from "node-llama-cpp"
import { writeFileSync, mkdtempSync } from "node:fs"
import { join } from "node:path"
import { tmpdir } from "node:os"
import * as Either from "effect/Either"
import { tinyLlamaGguf } from "../test/fixtures/ggufWriter.js"
import { generationPlan } from "../src/layers/gguf/JsonSchemaGrammar.js"
import { narrowJsonGrammar } from "../src/layers/gguf/llamaGrammar.js"
const dir = mkdtempSync(join(tmpdir(), "llmspell-bench-compact-"))
const path = join(dir, "m.gguf")
writeFileSync(path, tinyLlamaGguf({ vocabSize: 2000, seed: 7, contextLength: 4096 }))
const llama = await getLlama({ gpu: false, build: "never", progressLogs: false })
const model = await llama.loadModel({ modelPath: path })
const ctx = await model.createContext({ contextSize: 2048, threads: 1 })
const seq = ctx.getSequence()
const chat = new LlamaChat({ contextSequence: seq, chatWrapper: resolveChatWrapper(model) })
const tools = [
  { name: "weather", parameters: { type: "object", properties: { city: { type: "string", maxLength: 12 }, days: { type: "integer", minimum: 1, maximum: 7 } }, required: ["city", "days"] } },
  { name: "convert", parameters: { type: "object", properties: { amount: { type: "integer", minimum: 0, maximum: 99 }, to: { enum: ["eur", "usd"] }, notes: { type: "array", items: { type: "string", maxLength: 8 }, maxItems: 3 } } } }
]
const cases = {
  "forced tool call": { messages: [{ role: "user" as const, content: "go" }], tools, toolChoice: "required" as const },
  "schema answer": { messages: [{ role: "user" as const, content: "go" }], responseFormat: { schema: { type: "object", properties: { a: { type: "object", properties: { b: { type: "array", items: { type: "integer" }, maxItems: 4 }, c: { type: "string", maxLength: 10 } } }, d: { type: "boolean" } } } } }
}
for (const [label, request] of Object.entries(cases)) {
  const plan = Either.getOrThrow(generationPlan(request as never))
  if (plan._tag !== "Grammar") throw new Error("no grammar")
  const json = await llama.createGrammarForJsonSchema(plan.schema as never)
  const compact = await llama.createGrammar({ grammar: narrowJsonGrammar(json.grammar), trimWhitespaceSuffix: true })
  const totals: Record<string, number> = { original: 0, compact: 0 }
  const ws: Record<string, number> = { original: 0, compact: 0 }
  for (let seed = 1; seed <= 20; seed++) {
    for (const [name, grammar] of [["original", json], ["compact", compact]] as const) {
      await seq.clearHistory()
      const before = seq.tokenMeter.usedOutputTokens
      const r = await chat.generateResponse([{ type: "user", text: "go" }, { type: "model", response: [] }], { grammar, maxTokens: 600, temperature: 1, seed })
      totals[name] += seq.tokenMeter.usedOutputTokens - before
      ws[name] += (r.response.replace(/"(?:[^"\\]|\\.)*"/g, "").match(/\s/g) ?? []).length
    }
  }
  console.log(`${label}: 20 seeds, output tokens original ${totals.original}, compact ${totals.compact} (${(totals.compact / totals.original).toFixed(2)}×); whitespace characters outside strings ${ws.original} → ${ws.compact}`)
}
