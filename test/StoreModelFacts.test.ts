/**
 * One source for a model's facts, every name of a file listed and removable (issue 19 items 5 and 10).
 *
 * - `model verify` of an import checks it against the sha256 recorded at import, and says so (it said
 *   "ok (unverified: the hub gave no sha256)").
 * - The same file imported under a second name is a second model: both listed, each removable, each at a
 *   path of its own (the second import reported the first name's path, and `model list` showed one name).
 *   A different file with the same file name never overwrites the first import.
 * - `model list`'s QUANT, `model info`, and the Ollama API's `/api/tags`, `/api/ps` and `/api/show` agree:
 *   family and quantization from the GGUF header, a digest for every model, capabilities from the header
 *   (chat template with tools, pooling type).
 */
import * as Schema from "effect/Schema"
import { existsSync } from "node:fs"
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { slugOf } from "../src/domain/HubRef.js"
import { ImportResult, ModelInfo, ModelList, VerifyReport } from "../src/domain/Types.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"
import { tinyLlamaGguf, v } from "./fixtures/ggufWriter.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"
import { unusedPort } from "./support/ports.js"

let home: string
let closedPort: number

const cli = (args: ReadonlyArray<string>) =>
  runCli(args, {
    cwd: home,
    env: isolatedEnv(home, {
      LLMSPELL_MODELS_DIR: join(home, "models"),
      OLLAMA_HOST: `127.0.0.1:${closedPort}`,
      HF_ENDPOINT: `http://127.0.0.1:${closedPort}`
    })
  })
const json = async <A, I>(schema: Schema.Schema<A, I>, args: ReadonlyArray<string>): Promise<A> => {
  const r = await cli([...args, "--json"])
  expect(r.code, r.stderr).toBe(0)
  return Schema.decodeUnknownSync(schema)(JSON.parse(r.stdout))
}

/** A Q8_0 tiny llama whose file name says nothing of its quantization. */
const q8 = (seed: number) => tinyLlamaGguf({ seed, tensorType: "Q8_0" })

beforeAll(async () => {
  ensureBuilt()
  closedPort = await unusedPort()
  home = await mkdtemp(join(tmpdir(), "llmspell-facts-"))
}, 60_000)
afterAll(() => rm(home, { recursive: true, force: true }))

describe("imports: verified against the recorded sha256, one path per name (item 10)", () => {
  it("verify says an import matches the sha256 recorded at import; a second name is a second, removable model", async () => {
    const file = join(home, "downloaded.gguf")
    await writeFile(file, q8(1))
    const first = await json(ImportResult, ["model", "import", file])
    expect(first.model).toBe("downloaded")

    const verified = await cli(["model", "verify", "downloaded"])
    expect(verified.code, verified.stderr).toBe(0)
    expect(verified.stdout).toContain("ok (matches the sha256 recorded at import)")
    expect(verified.stdout).not.toContain("unverified")
    const report = await json(VerifyReport, ["model", "verify", "downloaded"])
    expect(report.files).toEqual([expect.objectContaining({ status: "ok", expectedFrom: "import", actualSha256: first.sha256 })])
    expect(report.files[0]!.unverified).toBeUndefined()

    const second = await json(ImportResult, ["model", "import", file, "--name", "other"])
    expect(second.path).not.toBe(first.path)
    expect(second.path).toBe(join(home, "models", "imported", `${slugOf("other")}.gguf`))
    const listed = await json(ModelList, ["model", "list", "--backend", "gguf"])
    expect(listed.models.map((m) => m.name).sort()).toEqual(["downloaded", "other"])

    const removed = await cli(["model", "remove", "downloaded", "--yes"])
    expect(removed.code, removed.stderr).toBe(0)
    expect(existsSync(first.path)).toBe(false)
    expect(existsSync(second.path)).toBe(true)
    const after = await json(ModelList, ["model", "list", "--backend", "gguf"])
    expect(after.models.map((m) => m.name)).toEqual(["other"])
    expect((await json(VerifyReport, ["model", "verify", "other"])).ok).toBe(true)
    expect((await cli(["model", "remove", "other", "--yes"])).code).toBe(0)
  })

  it("another file with the same file name, imported under another name, leaves the first import intact", async () => {
    await mkdir(join(home, "a"), { recursive: true })
    await mkdir(join(home, "b"), { recursive: true })
    await writeFile(join(home, "a", "model.gguf"), q8(2))
    await writeFile(join(home, "b", "model.gguf"), q8(3))
    const a = await json(ImportResult, ["model", "import", join(home, "a", "model.gguf"), "--name", "alpha"])
    const b = await json(ImportResult, ["model", "import", join(home, "b", "model.gguf"), "--name", "beta"])
    expect(a.sha256).not.toBe(b.sha256)
    const report = await json(VerifyReport, ["model", "verify"])
    expect(report.ok).toBe(true)
    expect(report.files.map((f) => [f.model, f.actualSha256])).toEqual(expect.arrayContaining([["alpha", a.sha256], ["beta", b.sha256]]))
    for (const name of ["alpha", "beta"]) expect((await cli(["model", "remove", name, "--yes"])).code).toBe(0)
  })
})

describe("one source for a model's facts (item 5)", () => {
  it("model list's QUANT of an import whose name says nothing is the header's, as model info says", async () => {
    const file = join(home, "plain-name.gguf")
    await writeFile(file, q8(4))
    expect((await cli(["model", "import", file])).code).toBe(0)
    const info = await json(ModelInfo, ["model", "info", "plain-name@gguf"])
    expect(info.quantization).toBe("Q8_0")
    const listed = await json(ModelList, ["model", "list", "--backend", "gguf"])
    expect(listed.models.find((m) => m.name === "plain-name")).toMatchObject({ quantization: "Q8_0", family: "llama" })
    const table = await cli(["model", "list", "--backend", "gguf"])
    expect(table.stdout.split("\n").find((l) => l.startsWith("plain-name "))).toContain("Q8_0")
    expect((await cli(["model", "remove", "plain-name", "--yes"])).code).toBe(0)
  })

  describe("the Ollama API says what model info says", () => {
    let dir: string
    let serve: ServeHarness
    const get = async (path: string) => (await fetch(`${serve.url}${path}`)).json() as Promise<Record<string, unknown>>
    const post = async (path: string, body: unknown) =>
      (await fetch(`${serve.url}${path}`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } }))
        .json() as Promise<Record<string, unknown>>
    type TagEntry = { name: string; digest: string; details: { family: string; families: Array<string> | null; quantization_level: string } }

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "llmspell-facts-serve-"))
      await mkdir(join(dir, "models"), { recursive: true })
      // a chat model with a plain template, and one whose template takes tools and whose header declares pooling
      await writeFile(join(dir, "models", "plain.gguf"), q8(5))
      await writeFile(
        join(dir, "models", "toolsy.gguf"),
        tinyLlamaGguf({
          seed: 6,
          tensorType: "Q8_0",
          overrideMetadata: {
            "tokenizer.chat_template": v.str("{% if tools %}{{ tools | tojson }}{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}"),
            "llama.pooling_type": v.u32(1)
          }
        })
      )
      serve = await startServe({ dir })
    }, 120_000)
    afterAll(async () => {
      await serve?.close()
      await rm(dir, { recursive: true, force: true })
    })

    it("/api/tags: family, quantization and a digest for every GGUF file", async () => {
      const tags = (await get("/api/tags")).models as Array<TagEntry>
      const byName = Object.fromEntries(tags.map((t) => [t.name, t]))
      for (const name of ["plain.gguf@gguf", "toolsy.gguf@gguf"]) {
        expect(byName[name], name).toMatchObject({ details: { family: "llama", families: ["llama"], quantization_level: "Q8_0" } })
        expect(byName[name]!.digest).toMatch(/^[0-9a-f]{64}$/)
      }
      expect(byName["plain.gguf@gguf"]!.digest).not.toBe(byName["toolsy.gguf@gguf"]!.digest)
    })

    it("/api/show: capabilities from the header (tools in the template, a pooling type), and the same quantization", async () => {
      const toolsy = await post("/api/show", { model: "toolsy.gguf@gguf" })
      expect(toolsy.capabilities).toEqual(["embedding", "tools"])
      expect(toolsy.details).toMatchObject({ family: "llama", quantization_level: "Q8_0" })
      const plain = await post("/api/show", { model: "plain.gguf@gguf" })
      expect(plain.capabilities).toEqual(["completion"])
    })

    it("/api/ps: a loaded model has the digest, family and quantization /api/tags gives it", async () => {
      const answer = await post("/api/generate", { model: "plain.gguf@gguf", prompt: "hi", stream: false, options: { num_predict: 2 } })
      expect(answer.done).toBe(true)
      const tag = ((await get("/api/tags")).models as Array<TagEntry>).find((t) => t.name === "plain.gguf@gguf")!
      const ps = (await get("/api/ps")).models as Array<TagEntry>
      expect(ps).toEqual([expect.objectContaining({ name: "plain.gguf@gguf", digest: tag.digest, details: expect.objectContaining(tag.details) })])
    })
  })
})
