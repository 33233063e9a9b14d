/**
 * Capabilities in listings (issue 23, "Capabilities"): every GGUF model of `model list --json`,
 * `GET /v1/models` and the web page's list carries what `model info` says it can do, from the same
 * function (`factsOfFile`), although a listing reads only each file's first 64 KiB and a real model's
 * chat template sits after megabytes of vocabulary: the rest of the header is walked in windows
 * (`scanGgufHeader`) and a long header's facts cached (`.cache/facts.json`), so a second listing reads
 * first bytes only. A truncated or malformed file still lists; a reranker (rank pooling) asked to embed
 * is refused from its header before any load, while a plain chat model still embeds.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { StoresConfig } from "../src/domain/ConfigSchema.js"
import { peekGgufMetadata, scanGgufHeader } from "../src/domain/GgufReader.js"
import { slugOf } from "../src/domain/HubRef.js"
import { ModelList } from "../src/domain/Types.js"
import * as LlmspellLive from "../src/layers/LlmspellLive.js"
import * as ModelStoreLive from "../src/layers/store/ModelStoreLive.js"
import * as ScanFsLive from "../src/layers/store/scanFs.js"
import { ScanFs, type ScanFsService } from "../src/layers/store/scanFs.js"
import * as UiAssets from "../src/serve/UiAssets.js"
import { LocalLLM } from "../src/services/LocalLLM.js"
import type { ModelStoreService } from "../src/services/ModelStore.js"
import { tinyLlamaGguf, v } from "./fixtures/ggufWriter.js"
import { tinyRerankerGguf } from "./fixtures/rerankerGguf.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

const TOOLS_TEMPLATE = "{% if tools %}{{ tools | tojson }}{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}"
const THINKING_TEMPLATE = "{% for m in messages %}{{ m.content }}{% endfor %}{% if not enable_thinking %}<think>\n\n</think>\n\n{% endif %}"

/** A chat model whose vocabulary (5000 tokens, ~100 KB) pushes its tools template past the first 64 KiB. */
const longHeader = (seed: number) =>
  tinyLlamaGguf({ seed, vocabSize: 5000, overrideMetadata: { "tokenizer.chat_template": v.str(TOOLS_TEMPLATE) } })

/** Each file and the capabilities `model info` gives it. */
const MODELS: ReadonlyArray<readonly [string, () => Uint8Array, ReadonlyArray<string>]> = [
  ["plain.gguf", () => tinyLlamaGguf({ seed: 1 }), ["completion"]],
  ["tools.gguf", () => tinyLlamaGguf({ seed: 2, overrideMetadata: { "tokenizer.chat_template": v.str(TOOLS_TEMPLATE) } }), ["completion", "tools"]],
  ["thinker.gguf", () => tinyLlamaGguf({ seed: 3, overrideMetadata: { "tokenizer.chat_template": v.str(THINKING_TEMPLATE) } }), ["completion", "thinking"]],
  ["embedder.gguf", () => tinyLlamaGguf({ seed: 4, overrideMetadata: { "llama.pooling_type": v.u32(1) } }), ["embedding"]],
  ["reranker.gguf", () => tinyRerankerGguf({ vocabSize: 300, seed: 5 }), ["rerank"]],
  ["long.gguf", () => longHeader(6), ["completion", "tools"]]
]

const dir = mkdtempSync(join(tmpdir(), "llmspell-list-caps-"))
const models = join(dir, "models")
const foreign = join(dir, "node-llama-cpp")
const LONG = longHeader(7)

beforeAll(() => {
  mkdirSync(models, { recursive: true })
  mkdirSync(foreign, { recursive: true })
  for (const [name, make] of MODELS) writeFileSync(join(models, name), make())
  // cut inside the vocabulary, past the first 64 KiB: the header is truncated
  writeFileSync(join(models, "truncated.gguf"), LONG.subarray(0, 90_000))
  writeFileSync(join(models, "garbage.gguf"), Buffer.from("not a model at all, just text"))
  writeFileSync(join(foreign, "foreign-long.gguf"), LONG)
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const capabilitiesByName = (list: { readonly models: ReadonlyArray<{ readonly name: string; readonly capabilities?: ReadonlyArray<string> | undefined }> }) =>
  Object.fromEntries(list.models.map((m) => [m.name, m.capabilities]))

describe("the long-header fixture", () => {
  it("has its chat template past the first 64 KiB (what today's 64 KiB peek cannot see)", () => {
    const peeked = peekGgufMetadata(LONG.subarray(0, 64 * 1024), LONG.length)
    expect(peeked._tag).toBe("Ok")
    if (peeked._tag === "Ok") {
      expect(peeked.complete).toBe(false)
      expect(peeked.metadata.has("tokenizer.chat_template")).toBe(false)
    }
  })
})

describe("scanGgufHeader: the header walked in windows", () => {
  it("reads no window larger than its chunk bound (the vocabulary is walked, not buffered) and finds the template", async () => {
    const reads: Array<number> = []
    const result = await scanGgufHeader(async (position, length) => {
      reads.push(length)
      return LONG.subarray(position, position + length)
    }, LONG.length, { initial: LONG.subarray(0, 4096), maxChunkBytes: 16 * 1024 })
    expect(result._tag).toBe("Ok")
    if (result._tag !== "Ok") return
    expect(result.file.metadata.get("tokenizer.chat_template")).toBe(TOOLS_TEMPLATE)
    expect(result.file.vocabularySize).toBe(5000)
    expect(result.file.tensors.map((t) => t.name)).toContain("token_embd.weight")
    expect(result.file.headerBytes).toBeGreaterThan(64 * 1024)
    expect(Math.max(...reads)).toBeLessThanOrEqual(16 * 1024)
  })

  it("a header past the bound is TooLarge; a truncated one is Invalid; neither throws", async () => {
    const read = (bytes: Uint8Array) => async (position: number, length: number) => bytes.subarray(position, position + length)
    expect((await scanGgufHeader(read(LONG), LONG.length, { maxHeaderBytes: 70_000 }))._tag).toBe("TooLarge")
    const cut = LONG.subarray(0, 90_000)
    const truncated = await scanGgufHeader(read(cut), cut.length)
    expect(truncated).toMatchObject({ _tag: "Invalid", problem: { reason: expect.stringMatching(/truncated/) } })
    // a file that shrinks while it is read
    const shrinking = await scanGgufHeader(async (position, length) => (position > 70_000 ? new Uint8Array(0) : LONG.subarray(position, position + length)), LONG.length, { maxChunkBytes: 8192 })
    expect(shrinking._tag).toBe("Invalid")
  })
})

describe("ModelStore.list (in process): capabilities, the cache, broken files", () => {
  const stores: StoresConfig = { ollama: false, hfCache: false, lmstudio: false, nodeLlamaCpp: { path: foreign }, env: {}, home: dir }
  const own = { directory: models, instance: "gguf" }
  // every read past a file's first bytes goes through readRange: counted per path
  const ranges = new Map<string, number>()
  const counting: ScanFsService = {
    ...ScanFsLive.make,
    readRange: (path, position, length) =>
      Effect.zipRight(Effect.sync(() => void ranges.set(path, (ranges.get(path) ?? 0) + 1)), ScanFsLive.make.readRange!(path, position, length))
  }
  const list = () =>
    Effect.runPromise(
      Effect.flatMap(ModelStoreLive.make(stores), (store) => store.list(own)).pipe(
        Effect.provide(Layer.merge(NodeFileSystem.layer, Layer.succeed(ScanFs, counting)))
      )
    )

  it("every model carries what model info says; the long headers of both stores are read once, then cached", async () => {
    ranges.clear()
    const first = await list()
    const byName = capabilitiesByName(first)
    for (const [name, , capabilities] of MODELS) expect(byName[name], name).toEqual(capabilities)
    expect(byName["foreign-long.gguf"]).toEqual(["completion", "tools"])
    // a truncated header and a file that is no GGUF: listed, with no capabilities, no failure
    expect(first.models.map((m) => m.name)).toEqual(expect.arrayContaining(["truncated.gguf", "garbage.gguf"]))
    expect(byName["truncated.gguf"]).toBeUndefined()
    expect(byName["garbage.gguf"]).toBeUndefined()
    expect(first.models.find((m) => m.name === "truncated.gguf")).toMatchObject({ family: "llama" })
    // only the long headers were read past their first bytes
    expect([...ranges.keys()].sort()).toEqual([join(foreign, "foreign-long.gguf"), join(models, "long.gguf"), join(models, "truncated.gguf")].sort())

    ranges.clear()
    const second = await list()
    expect(capabilitiesByName(second)).toEqual(byName)
    expect(ranges.size).toBe(0)

    // a file rewritten (another mtime) is read again
    const later = new Date(Date.now() + 5000)
    utimesSync(join(models, "long.gguf"), later, later)
    ranges.clear()
    const third = await list()
    expect(capabilitiesByName(third)["long.gguf"]).toEqual(["completion", "tools"])
    expect([...ranges.keys()]).toEqual([join(models, "long.gguf")])
  })

  it("a corrupt facts cache is ignored: the headers are read again and the listing is the same", async () => {
    writeFileSync(join(models, ".cache", "facts.json"), "{ not json")
    ranges.clear()
    const listed = await list()
    expect(capabilitiesByName(listed)["long.gguf"]).toEqual(["completion", "tools"])
    expect(ranges.get(join(models, "long.gguf"))).toBeGreaterThan(0)
  })
})

describe("llmspell's own store: an import records the capabilities; an older manifest has its header read once", () => {
  const store = join(dir, "own")
  const stores: StoresConfig = { ollama: false, hfCache: false, lmstudio: false, nodeLlamaCpp: false, env: {}, home: dir }
  const own = { directory: store, instance: "gguf" }
  const ranges: Array<string> = []
  const counting: ScanFsService = {
    ...ScanFsLive.make,
    readRange: (path, position, length) => Effect.zipRight(Effect.sync(() => void ranges.push(path)), ScanFsLive.make.readRange!(path, position, length))
  }
  const run = <A, E>(f: (s: ModelStoreService) => Effect.Effect<A, E>) =>
    Effect.runPromise(
      Effect.flatMap(ModelStoreLive.make(stores), f).pipe(Effect.provide(Layer.merge(NodeFileSystem.layer, Layer.succeed(ScanFs, counting))))
    )

  it("import → manifest with capabilities, listed without a header read; stripped from the manifest → read once, then cached", async () => {
    const source = join(dir, "to-import.gguf")
    writeFileSync(source, longHeader(8))
    const installed = await run((s) => s.importFile(source, own, { name: "imported-long" }))
    const manifestFile = join(store, "manifests", `${slugOf("imported-long")}.json`)
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as Record<string, unknown>
    expect(manifest.capabilities).toEqual(["completion", "tools"])
    ranges.length = 0
    const listed = await run((s) => s.list(own))
    expect(capabilitiesByName(listed)["imported-long"]).toEqual(["completion", "tools"])
    expect(ranges).toEqual([])
    // a manifest written before capabilities were recorded
    delete manifest.capabilities
    writeFileSync(manifestFile, JSON.stringify(manifest))
    const again = await run((s) => s.list(own))
    expect(capabilitiesByName(again)["imported-long"]).toEqual(["completion", "tools"])
    expect(new Set(ranges)).toEqual(new Set([installed.primaryPath]))
    ranges.length = 0
    expect(capabilitiesByName(await run((s) => s.list(own)))["imported-long"]).toEqual(["completion", "tools"])
    expect(ranges).toEqual([])
  })
})

describe("llmspell model list --json (built CLI)", () => {
  it("each GGUF model carries its capabilities, the long-header one included", async () => {
    ensureBuilt()
    const home = join(dir, "cli-home")
    mkdirSync(home, { recursive: true })
    const r = await runCli(["model", "list", "--backend", "gguf", "--json"], {
      cwd: home,
      env: isolatedEnv(home, { LLMSPELL_MODELS_DIR: models })
    })
    expect(r.code, r.stderr).toBe(0)
    const listed = Schema.decodeUnknownSync(ModelList)(JSON.parse(r.stdout))
    const byName = capabilitiesByName(listed)
    for (const [name, , capabilities] of MODELS) expect(byName[name], name).toEqual(capabilities)
  })
})

describe("llmspell serve", () => {
  let serve: ServeHarness
  beforeAll(async () => {
    ensureBuilt() // the page's assets
    serve = await startServe({ dir: join(dir, "serve"), gguf: { model_directory: models } }, { ui: Option.getOrThrow(Effect.runSync(UiAssets.load())) })
  }, 120_000)
  afterAll(async () => {
    await serve?.close()
  })

  it("GET /v1/models: each GGUF entry carries the capabilities /v1/models/{model} gives it", async () => {
    const page = await (await fetch(`${serve.url}/v1/models`)).json() as { data: Array<{ id: string; capabilities?: Array<string> }> }
    const byId = Object.fromEntries(page.data.map((e) => [e.id, e.capabilities]))
    for (const [name, , capabilities] of MODELS) {
      expect(byId[`${name}@gguf`], name).toEqual(capabilities)
      const one = await (await fetch(`${serve.url}/v1/models/${encodeURIComponent(`${name}@gguf`)}`)).json() as { capabilities: Array<string> }
      expect(one.capabilities, name).toEqual(capabilities)
    }
  })

  it("the web page's model list carries them too", async () => {
    const page = await (await fetch(`${serve.url}/ui/api/models`)).json() as { models: Array<{ spec: string; capabilities?: Array<string> }> }
    expect(page.models.find((m) => m.spec === "long.gguf@gguf")?.capabilities).toEqual(["completion", "tools"])
  })

  it("/v1/embeddings on a reranker: a 400 naming the embedding capability it lacks and the one it has", async () => {
    const response = await fetch(`${serve.url}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "reranker.gguf@gguf", input: "hello" })
    })
    expect(response.status).toBe(400)
    const message = ((await response.json()) as { error: { message: string } }).error.message
    expect(message).toContain("\"embedding\"")
    expect(message).toContain("rerank")
    expect(message).not.toMatch(/llmspell |`/)
  })
})

describe("embed on GGUF: refused where the header says the model cannot give vectors", () => {
  const stack = LlmspellLive.layerFromObject(
    {
      providers: { gguf: { provider_type: "gguf", model_directory: models, threads: 1, context_size: 256, parallel: 1, isolation: "none" } },
      hub: { offline: true },
      stores: { ollama: false, hf_cache: false, lmstudio: false, node_llama_cpp: false }
    },
    { env: {}, home: dir }
  )

  it("a reranker is UnsupportedOperation naming embedding and its capabilities, before any load; a plain chat model embeds", async () => {
    await Effect.runPromise(Effect.gen(function*() {
      const llm = yield* LocalLLM
      const refused = yield* Effect.flip(llm.embed("reranker.gguf@gguf", ["hello"]))
      expect(refused._tag).toBe("UnsupportedOperation")
      expect(refused.message).toMatch(/lacks the "embedding" capability/)
      expect(refused.message).toMatch(/its capabilities: rerank/)
      expect(yield* llm.ps("gguf")).toEqual([])
      const embedded = yield* llm.embed("plain.gguf@gguf", ["hello"])
      expect(embedded.vectors).toHaveLength(1)
      expect(embedded.dimensions).toBeGreaterThan(0)
    }).pipe(Effect.provide(stack)))
  }, 120_000)
})
