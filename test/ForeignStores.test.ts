/**
 * The GGUF stores of other tools: default roots from the environment (pure), Ollama name
 * normalisation (pure), and the read-only scanner over fixture stores laid out exactly as Ollama,
 * huggingface_hub, LM Studio and node-llama-cpp write them (test/fixtures/foreignStores.ts).
 * Faults a root user cannot produce with chmod (permission denied) or that need a precise moment
 * (a file vanishing between readdir and read) are injected by wrapping the real fs calls.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import { lstat, mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink, unlink, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import * as ForeignStores from "../src/domain/ForeignStores.js"
import { parseGguf } from "../src/domain/GgufReader.js"
import * as Scan from "../src/layers/store/foreign/scan.js"
import type { ScanOptions, ScanResult } from "../src/layers/store/foreign/scan.js"
import * as ScanFsLive from "../src/layers/store/scanFs.js"
import { ScanFs, ScanFsError, type ScanFsService } from "../src/layers/store/scanFs.js"
import {
  commitId,
  fixtureRoots,
  hfCacheFile,
  lmstudioModel,
  loadableGguf,
  nodeLlamaCppModel,
  ollamaModel,
  populatedMachine,
  sha256Hex,
  tinyGguf
} from "./fixtures/foreignStores.js"

let home: string
beforeEach(async () => {
  home = await realpath(await mkdtemp(join(tmpdir(), "llmspell-stores-")))
})
afterEach(async () => {
  await rm(home, { recursive: true, force: true })
})

const emptyRoots: ForeignStores.ForeignStoreRoots = { ollama: [], hfCache: [], lmstudio: [], nodeLlamaCpp: [] }

/** Runs a scan over the real ScanFs (or the one given). */
const run = <A>(effect: Effect.Effect<A, never, ScanFs>, fs: ScanFsService = ScanFsLive.make): Promise<A> =>
  Effect.runPromise(Effect.provideService(effect, ScanFs, fs))

type WithFs = ScanOptions & { readonly fs?: ScanFsService }
const scanOllama = (roots: ReadonlyArray<string>, { fs, ...o }: WithFs = {}): Promise<ScanResult> => run(Scan.scanOllama(roots, o), fs)
const scanHfCache = (roots: ReadonlyArray<string>, { fs, ...o }: WithFs = {}): Promise<ScanResult> => run(Scan.scanHfCache(roots, o), fs)
const scanLmStudio = (roots: ReadonlyArray<string>, { fs, ...o }: WithFs = {}): Promise<ScanResult> => run(Scan.scanLmStudio(roots, o), fs)
const scanNodeLlamaCpp = (roots: ReadonlyArray<string>, { fs, ...o }: WithFs = {}): Promise<ScanResult> =>
  run(Scan.scanNodeLlamaCpp(roots, o), fs)
const scanAll = (roots: ForeignStores.ForeignStoreRoots, { fs, ...o }: WithFs = {}): Promise<ScanResult> => run(Scan.scanAll(roots, o), fs)

/** Every scan call by name. */
type ScanOp = keyof ScanFsService

/**
 * The real ScanFs, with some paths made unreadable, a hook before every call (it may hang: a promise that
 * never settles), and a per-path count of folder listings.
 */
const instrumentedFs = (options: {
  readonly denied?: (path: string) => boolean
  readonly before?: (op: ScanOp, path: string) => void | Promise<void>
} = {}) => {
  const readdirCalls = new Map<string, number>()
  const guard = (op: ScanOp, path: string) =>
    Effect.flatMap(Effect.promise(async () => options.before?.(op, path)), () =>
      options.denied?.(path) === true
        ? Effect.fail(new ScanFsError({ path, code: "EACCES", reason: "permission denied" }))
        : Effect.void)
  const real = ScanFsLive.make
  const fs: ScanFsService = {
    observe: real.observe,
    readDirectory: (path, limit) =>
      Effect.zipRight(
        Effect.sync(() => readdirCalls.set(path, (readdirCalls.get(path) ?? 0) + 1)),
        Effect.zipRight(guard("readDirectory", path), real.readDirectory(path, limit))
      ),
    stat: (path) => Effect.zipRight(guard("stat", path), real.stat(path)),
    lstat: (path) => Effect.zipRight(guard("lstat", path), real.lstat(path)),
    readLink: (path) => Effect.zipRight(guard("readLink", path), real.readLink(path)),
    realPath: (path) => Effect.zipRight(guard("realPath", path), real.realPath(path)),
    readPrefix: (path, bytes, o) => Effect.zipRight(guard("readPrefix", path), real.readPrefix(path, bytes, o)),
    readText: (path, max) => Effect.zipRight(guard("readText", path), real.readText(path, max))
  }
  return { fs, readdirCalls }
}

/** Every path under `dir` with what a write would change (size, mtime, mode, link target). */
const treeState = async (dir: string): Promise<Array<string>> => {
  const out: Array<string> = []
  const walk = async (d: string) => {
    for (const name of (await readdir(d)).sort()) {
      const p = join(d, name)
      const s = await lstat(p)
      out.push(`${p} ${s.size} ${s.mtimeMs} ${s.mode}`)
      if (s.isDirectory()) await walk(p)
    }
  }
  await walk(dir)
  return out
}

// ---------------------------------------------------------------------------------------------
// Roots
// ---------------------------------------------------------------------------------------------

describe("default roots", () => {
  const H = "/home/u"
  it("Ollama: OLLAMA_MODELS (spaces and quotes trimmed as Ollama's envconfig does), else ~/.ollama/models and the Linux service's", () => {
    expect(ForeignStores.ollamaRoots({ env: {}, home: H })).toEqual([
      "/home/u/.ollama/models",
      "/usr/share/ollama/.ollama/models"
    ])
    expect(ForeignStores.ollamaRoots({ env: { OLLAMA_MODELS: ` "/data/ollama" ` }, home: H })).toEqual(["/data/ollama"])
    expect(ForeignStores.ollamaRoots({ env: { OLLAMA_MODELS: "" }, home: H })).toHaveLength(2)
  })

  it("HF cache: HF_HUB_CACHE, then HUGGINGFACE_HUB_CACHE, then $HF_HOME/hub, then $XDG_CACHE_HOME/huggingface/hub, with ~ and $VAR expanded", () => {
    const root = (env: Record<string, string>) => ForeignStores.hfCacheRoot({ env, home: H })
    expect(root({})).toBe("/home/u/.cache/huggingface/hub")
    expect(root({ XDG_CACHE_HOME: "/xdg" })).toBe("/xdg/huggingface/hub")
    expect(root({ XDG_CACHE_HOME: "/xdg", HF_HOME: "/hf" })).toBe("/hf/hub")
    expect(root({ HF_HOME: "/hf", HUGGINGFACE_HUB_CACHE: "/legacy" })).toBe("/legacy")
    expect(root({ HF_HOME: "/hf", HUGGINGFACE_HUB_CACHE: "/legacy", HF_HUB_CACHE: "/hub" })).toBe("/hub")
    expect(root({ HF_HUB_CACHE: "~/models/hub" })).toBe("/home/u/models/hub")
    expect(root({ HF_HOME: "$DATA/hf", DATA: "/mnt/data" })).toBe("/mnt/data/hf/hub")
    expect(root({ HF_HOME: "${DATA}/hf", DATA: "/d" })).toBe("/d/hf/hub")
    expect(root({ HF_HUB_CACHE: "", HF_HOME: "" })).toBe("/home/u/.cache/huggingface/hub")
  })

  it("LM Studio: the home in ~/.lmstudio-home-pointer, else ~/.lmstudio/models and the older ~/.cache/lm-studio/models; node-llama-cpp: ~/.node-llama-cpp/models", () => {
    expect(ForeignStores.lmstudioRoots(H, undefined)).toEqual([
      "/home/u/.lmstudio/models",
      "/home/u/.cache/lm-studio/models"
    ])
    expect(ForeignStores.lmstudioRoots(H, "/big/disk/lmstudio\n")).toEqual(["/big/disk/lmstudio/models"])
    expect(ForeignStores.nodeLlamaCppRoots(H)).toEqual(["/home/u/.node-llama-cpp/models"])
  })

  it("resolveDefaultRoots reads the LM Studio pointer file from the home directory", async () => {
    const resolveDefaultRoots = (environment: ForeignStores.StoreEnvironment) => run(Scan.resolveDefaultRoots(environment))
    expect((await resolveDefaultRoots({ env: {}, home })).lmstudio).toEqual([
      join(home, ".lmstudio", "models"),
      join(home, ".cache", "lm-studio", "models")
    ])
    await writeFile(join(home, ".lmstudio-home-pointer"), "/srv/lms")
    const roots = await resolveDefaultRoots({ env: { HF_HOME: "/hf" }, home })
    expect(roots).toEqual({
      ollama: [join(home, ".ollama", "models"), "/usr/share/ollama/.ollama/models"],
      hfCache: ["/hf/hub"],
      lmstudio: ["/srv/lms/models"],
      nodeLlamaCpp: [join(home, ".node-llama-cpp", "models")]
    })
  })
})

// ---------------------------------------------------------------------------------------------
// Ollama names
// ---------------------------------------------------------------------------------------------

describe("Ollama names", () => {
  it("are normalised the way Ollama does: default host, namespace and tag, case-insensitive", () => {
    const same = [
      "llama3.2",
      "llama3.2:latest",
      "library/llama3.2",
      "registry.ollama.ai/library/llama3.2:latest",
      "https://registry.ollama.ai/library/llama3.2",
      "LLAMA3.2:Latest"
    ]
    for (const a of same) for (const b of same) expect(ForeignStores.sameOllamaName(a, b)).toBe(true)
    expect(ForeignStores.sameOllamaName("llama3.2", "llama3.2:3b")).toBe(false)
    expect(ForeignStores.sameOllamaName("llama3.2", "someone/llama3.2")).toBe(false)
    expect(ForeignStores.parseOllamaName("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M")).toEqual({
      host: "hf.co",
      namespace: "bartowski",
      model: "Llama-3.2-1B-Instruct-GGUF",
      tag: "Q4_K_M"
    })
  })

  it("display as `ollama list` shows them: default host and namespace dropped, the tag kept", () => {
    const display = (text: string) => ForeignStores.displayOllamaName(ForeignStores.parseOllamaName(text)!)
    expect(display("llama3.2")).toBe("llama3.2:latest")
    expect(display("registry.ollama.ai/library/llama3.2:3b")).toBe("llama3.2:3b")
    expect(display("registry.ollama.ai/someone/tool")).toBe("someone/tool:latest")
    expect(display("hf.co/org/repo:Q8_0")).toBe("hf.co/org/repo:Q8_0")
    expect(ForeignStores.ollamaManifestPath(ForeignStores.parseOllamaName("llama3.2:3b")!)).toBe(
      "manifests/registry.ollama.ai/library/llama3.2/3b"
    )
  })

  it("reject what Ollama rejects", () => {
    for (const bad of ["", "a/b/c/d", "x@sha256-00", "x+Q4_0", "../x", "ns.with.dot/model", "model:", "-model", "a b"]) {
      expect(ForeignStores.parseOllamaName(bad), bad).toBeUndefined()
    }
    expect(ForeignStores.ollamaNameFromManifestPath("registry.ollama.ai/library/llama3.2")).toBeUndefined()
  })
})

// ---------------------------------------------------------------------------------------------
// Each layout
// ---------------------------------------------------------------------------------------------

describe("Ollama store", () => {
  it("lists every manifest's GGUF layer as its blob, with the digest as sha256 and file_type as quantization", async () => {
    const root = fixtureRoots(home).ollama
    const llama = await ollamaModel(root, { model: "llama3.2", tag: "3b", gguf: loadableGguf(1), fileType: "Q4_K_M" })
    const hf = await ollamaModel(root, {
      host: "hf.co",
      namespace: "bartowski",
      model: "Llama-3.2-1B-Instruct-GGUF",
      tag: "Q8_0",
      gguf: tinyGguf("hf"),
      fileType: "unknown"
    })
    const ns = await ollamaModel(root, { namespace: "someone", model: "tool", gguf: tinyGguf("tool"), fileType: "F16" })
    // A safetensors model (no GGUF layer) is not listed, and is nothing to warn about.
    await mkdir(join(root, "manifests", "registry.ollama.ai", "library", "st"), { recursive: true })
    await writeFile(
      join(root, "manifests", "registry.ollama.ai", "library", "st", "latest"),
      JSON.stringify({
        schemaVersion: 2,
        config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: `sha256:${"1".repeat(64)}`, size: 2 },
        layers: [{ mediaType: "application/vnd.ollama.image.tensor; name=w", digest: `sha256:${"2".repeat(64)}`, size: 4 }]
      })
    )

    const result = await scanOllama([root])
    expect(result.warnings).toEqual([])
    expect(result.models).toEqual([
      {
        store: "ollama-store",
        name: "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q8_0",
        path: hf.blobPath,
        sizeBytes: hf.sizeBytes,
        sha256: hf.sha256,
        quantization: "Q8_0",
        removeCommand: "ollama rm hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q8_0",
        family: "llama",
        modifiedAt: expect.any(String),
        root
      },
      {
        store: "ollama-store",
        name: "llama3.2:3b",
        path: llama.blobPath,
        sizeBytes: llama.sizeBytes,
        sha256: llama.sha256,
        // the GGUF header's file type wins over the config blob's file_type (every view says the same)
        quantization: "F16",
        removeCommand: "ollama rm llama3.2:3b",
        family: "llama",
        modifiedAt: expect.any(String),
        root
      },
      {
        store: "ollama-store",
        name: "someone/tool:latest",
        path: ns.blobPath,
        sizeBytes: ns.sizeBytes,
        sha256: ns.sha256,
        quantization: "F16",
        removeCommand: "ollama rm someone/tool:latest",
        family: "llama",
        modifiedAt: expect.any(String),
        root
      }
    ])
    // The blob's name is its content's sha256, so dedupe by sha256 across stores is sound.
    expect(sha256Hex(await readFile(llama.blobPath))).toBe(llama.sha256)
    for (const m of result.models) expect(Schema.is(ForeignStores.ForeignModel)(m)).toBe(true)
  })

  it("reads one store once even when two default roots lead to it", async () => {
    const root = fixtureRoots(home).ollama
    await ollamaModel(root, { model: "llama3.2", gguf: tinyGguf("a") })
    await symlink(root, join(home, "alias"))
    const result = await scanOllama([root, join(home, "alias"), join(home, "absent")])
    expect(result.models.map((m) => m.name)).toEqual(["llama3.2:latest"])
    expect(result.warnings).toEqual([])
  })
})

describe("Hugging Face cache", () => {
  it("lists snapshot GGUFs through their relative symlinks: sha256 from the LFS blob name, refs/main's snapshot first, split parts grouped", async () => {
    const root = fixtureRoots(home).hfCache
    const repo = "bartowski/Llama-3.2-1B-Instruct-GGUF"
    const main = commitId("main")
    const old = commitId("old")
    // An older revision: its Q4_K_M differs from main's, and it alone has the IQ4_XS file.
    const oldQ4 = await hfCacheFile(root, { repo, commit: old, file: "Llama-3.2-1B-Instruct-Q4_K_M.gguf", bytes: tinyGguf("old-q4"), ref: null })
    const oldOnly = await hfCacheFile(root, { repo, commit: old, file: "Llama-3.2-1B-Instruct-IQ4_XS.gguf", bytes: tinyGguf("iq4"), ref: null })
    const q4 = await hfCacheFile(root, { repo, commit: main, file: "Llama-3.2-1B-Instruct-Q4_K_M.gguf", bytes: loadableGguf(2) })
    const readme = await hfCacheFile(root, { repo, commit: main, file: "README.md", bytes: new TextEncoder().encode("# card") })
    const part1 = await hfCacheFile(root, { repo, commit: main, file: "Q8_0/Llama-3.2-1B-Instruct-Q8_0-00001-of-00002.gguf", bytes: tinyGguf("p1") })
    const part2 = await hfCacheFile(root, { repo, commit: main, file: "Q8_0/Llama-3.2-1B-Instruct-Q8_0-00002-of-00002.gguf", bytes: tinyGguf("p2") })
    await hfCacheFile(root, { repo, commit: main, file: "mmproj-model-f16.gguf", bytes: tinyGguf("proj") })
    // A dataset and a legacy no-namespace model repo sit beside it.
    await hfCacheFile(root, { repo: "gpt2", commit: commitId("gpt2"), file: "gpt2-F16.gguf", bytes: tinyGguf("gpt2") })
    await mkdir(join(root, "datasets--glue", "snapshots"), { recursive: true })

    expect(readme.etag).toMatch(/^[0-9a-f]{40}$/)
    expect(await readFile(q4.snapshotPath)).toEqual(Buffer.from(loadableGguf(2)))

    const result = await scanHfCache([root])
    expect(result.warnings).toEqual([])
    const size = (bytes: Uint8Array) => bytes.length
    expect(result.models).toEqual([
      {
        store: "hf-cache",
        name: `hf.co/${repo}:Q4_K_M`,
        path: q4.blobPath,
        sizeBytes: size(loadableGguf(2)),
        sha256: sha256Hex(loadableGguf(2)),
        quantization: "F16",
        removeCommand: `hf cache rm hf://models/${repo}/Llama-3.2-1B-Instruct-Q4_K_M.gguf`,
        family: "llama",
        modifiedAt: expect.any(String),
        root,
        repo,
        file: "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
        revision: main
      },
      {
        store: "hf-cache",
        name: `hf.co/${repo}:Q8_0`,
        path: part1.blobPath,
        sizeBytes: size(tinyGguf("p1")) + size(tinyGguf("p2")),
        quantization: "Q8_0",
        removeCommand: `hf cache rm hf://models/${repo}/Q8_0/Llama-3.2-1B-Instruct-Q8_0-00001-of-00002.gguf`,
        family: "llama",
        modifiedAt: expect.any(String),
        root,
        repo,
        file: "Q8_0/Llama-3.2-1B-Instruct-Q8_0-00001-of-00002.gguf",
        revision: main,
        parts: [part1.blobPath, part2.blobPath]
      },
      {
        store: "hf-cache",
        name: `hf.co/${repo}:IQ4_XS`,
        path: oldOnly.blobPath,
        sizeBytes: size(tinyGguf("iq4")),
        sha256: oldOnly.etag,
        quantization: "IQ4_XS",
        removeCommand: `hf cache rm hf://models/${repo}/Llama-3.2-1B-Instruct-IQ4_XS.gguf`,
        family: "llama",
        modifiedAt: expect.any(String),
        root,
        repo,
        file: "Llama-3.2-1B-Instruct-IQ4_XS.gguf",
        revision: old
      },
      {
        store: "hf-cache",
        name: "hf.co/gpt2:F16",
        path: expect.stringContaining("models--gpt2/blobs/"),
        sizeBytes: size(tinyGguf("gpt2")),
        sha256: sha256Hex(tinyGguf("gpt2")),
        quantization: "F16",
        removeCommand: "hf cache rm hf://models/gpt2/gpt2-F16.gguf",
        family: "llama",
        modifiedAt: expect.any(String),
        root,
        repo: "gpt2",
        file: "gpt2-F16.gguf",
        revision: commitId("gpt2")
      }
    ])
    expect(result.models.some((m) => m.path === oldQ4.blobPath)).toBe(false)
  })

  it("follows huggingface_hub's shared Xet store, where the repo's blob is itself a link to <cache>/blobs/<prefix>/<hash>", async () => {
    const root = fixtureRoots(home).hfCache
    const bytes = tinyGguf("xet")
    const fixture = await hfCacheFile(root, { repo: "org/xet", commit: commitId("xet"), file: "x-Q4_K_M.gguf", bytes })
    const shared = join(root, "blobs", "ab", "ab".repeat(32))
    await mkdir(join(root, "blobs", "ab"), { recursive: true })
    await writeFile(shared, bytes)
    await unlink(fixture.blobPath)
    await symlink(`../../blobs/ab/${"ab".repeat(32)}`, fixture.blobPath)
    const result = await scanHfCache([root])
    expect(result.warnings).toEqual([])
    expect(result.models).toEqual([expect.objectContaining({ name: "hf.co/org/xet:Q4_K_M", path: shared, sha256: sha256Hex(bytes) })])
  })

  it("reads the no-symlink form (HF_HUB_DISABLE_SYMLINKS, Windows): a plain file in the snapshot, with no sha256 claimed", async () => {
    const root = fixtureRoots(home).hfCache
    const file = join(root, "models--org--plain", "snapshots", commitId("p"), "plain-Q6_K.gguf")
    await mkdir(join(file, ".."), { recursive: true })
    await writeFile(file, tinyGguf("plain"))
    const result = await scanHfCache([root])
    expect(result.warnings).toEqual([])
    expect(result.models).toEqual([
      expect.objectContaining({ name: "hf.co/org/plain:Q6_K", path: file, sizeBytes: tinyGguf("plain").length })
    ])
    expect(result.models[0]!.sha256).toBeUndefined()
  })

  it("names the cache dir in `hf cache rm` when it is not hf's default", async () => {
    const root = join(home, "elsewhere")
    await hfCacheFile(root, { repo: "org/repo", commit: commitId("c"), file: "a b-Q4_K_M.gguf", bytes: tinyGguf("x") })
    const result = await scanHfCache([root], { hfDefaultRoot: join(home, ".cache", "huggingface", "hub") })
    expect(result.models[0]!.removeCommand).toBe(
      `hf cache rm 'hf://models/org/repo/a b-Q4_K_M.gguf' --cache-dir ${root}`
    )
  })

  it("the pure link check keeps blob names inside the repo's blobs/", () => {
    expect(ForeignStores.hfBlobOfLink("x.gguf", `../../blobs/${"a".repeat(64)}`)).toEqual(
      expect.objectContaining({ right: { etag: "a".repeat(64), sha256: "a".repeat(64) } })
    )
    expect(ForeignStores.hfBlobOfLink("sub/x.gguf", `../../../blobs/${"b".repeat(40)}`)).toEqual(
      expect.objectContaining({ right: { etag: "b".repeat(40), sha256: undefined } })
    )
    for (const bad of ["../../../blobs/x", "/etc/passwd", "../../snapshots/x", "../../blobs/a/../../../../etc"]) {
      expect(ForeignStores.hfBlobOfLink("x.gguf", bad)._tag, bad).toBe("Left")
    }
  })
})

describe("LM Studio and node-llama-cpp", () => {
  it("LM Studio: publisher/repo/file under both roots, imported symlinks resolved, projectors and loose files skipped", async () => {
    const root = fixtureRoots(home).lmstudio
    const legacy = join(home, ".cache", "lm-studio", "models")
    const a = await lmstudioModel(root, {
      publisher: "lmstudio-community",
      repo: "Meta-Llama-3-8B-Instruct-GGUF",
      file: "Meta-Llama-3-8B-Instruct-Q4_K_M.gguf",
      bytes: loadableGguf(3)
    })
    await lmstudioModel(root, { publisher: "lmstudio-community", repo: "Meta-Llama-3-8B-Instruct-GGUF", file: "mmproj-F16.gguf", bytes: tinyGguf("p") })
    await writeFile(join(root, "loose.gguf"), tinyGguf("loose"))
    await mkdir(join(root, "pub"), { recursive: true })
    await writeFile(join(root, "pub", "half.gguf"), tinyGguf("half"))
    // `lms import -l` leaves a symlink to a file elsewhere.
    const outside = join(home, "Downloads", "phi-3-mini-Q8_0.gguf")
    await mkdir(join(home, "Downloads"))
    await writeFile(outside, tinyGguf("phi"))
    await mkdir(join(root, "microsoft", "Phi-3-mini-GGUF"), { recursive: true })
    await symlink(outside, join(root, "microsoft", "Phi-3-mini-GGUF", "phi-3-mini-Q8_0.gguf"))
    const old = await lmstudioModel(legacy, { publisher: "TheBloke", repo: "Mistral-7B-GGUF", file: "mistral-7b.Q5_K_M.gguf", bytes: tinyGguf("m") })

    const result = await scanLmStudio([root, legacy])
    expect(result.warnings).toEqual([])
    expect(result.models).toEqual([
      {
        store: "lmstudio",
        name: "lmstudio-community/Meta-Llama-3-8B-Instruct-GGUF/Meta-Llama-3-8B-Instruct-Q4_K_M.gguf",
        path: a,
        sizeBytes: loadableGguf(3).length,
        quantization: "F16",
        removeCommand: `rm ${a}`,
        family: "llama",
        modifiedAt: expect.any(String),
        root,
        repo: "lmstudio-community/Meta-Llama-3-8B-Instruct-GGUF",
        file: "Meta-Llama-3-8B-Instruct-Q4_K_M.gguf"
      },
      {
        store: "lmstudio",
        name: "microsoft/Phi-3-mini-GGUF/phi-3-mini-Q8_0.gguf",
        path: outside,
        // the link as the store keeps it: what a remove command names, never the file it points at
        storePath: join(root, "microsoft", "Phi-3-mini-GGUF", "phi-3-mini-Q8_0.gguf"),
        sizeBytes: tinyGguf("phi").length,
        quantization: "Q8_0",
        removeCommand: `rm ${join(root, "microsoft", "Phi-3-mini-GGUF", "phi-3-mini-Q8_0.gguf")}`,
        family: "llama",
        modifiedAt: expect.any(String),
        root,
        repo: "microsoft/Phi-3-mini-GGUF",
        file: "phi-3-mini-Q8_0.gguf"
      },
      {
        store: "lmstudio",
        name: "TheBloke/Mistral-7B-GGUF/mistral-7b.Q5_K_M.gguf",
        path: old,
        sizeBytes: tinyGguf("m").length,
        quantization: "Q5_K_M",
        removeCommand: `rm ${old}`,
        family: "llama",
        modifiedAt: expect.any(String),
        root: legacy,
        repo: "TheBloke/Mistral-7B-GGUF",
        file: "mistral-7b.Q5_K_M.gguf"
      }
    ])
  })

  it("node-llama-cpp: the GGUF files directly in its models directory, split parts grouped, partial downloads ignored", async () => {
    const root = fixtureRoots(home).nodeLlamaCpp
    const one = await nodeLlamaCppModel(root, "hf_bartowski_Llama-3.2-1B-Instruct.Q4_K_M.gguf", tinyGguf("a"))
    const p1 = await nodeLlamaCppModel(root, "hf_mradermacher_Big.Q8_0-00001-of-00002.gguf", tinyGguf("b1"))
    const p2 = await nodeLlamaCppModel(root, "hf_mradermacher_Big.Q8_0-00002-of-00002.gguf", tinyGguf("b2"))
    await nodeLlamaCppModel(root, "hf_x_Model.Q4_K_M.gguf.ipull", tinyGguf("partial"))
    await nodeLlamaCppModel(root, "sub/nested.gguf", tinyGguf("nested"))

    const result = await scanNodeLlamaCpp([root])
    expect(result.warnings).toEqual([])
    expect(result.models).toEqual([
      {
        store: "node-llama-cpp",
        name: "hf_bartowski_Llama-3.2-1B-Instruct.Q4_K_M.gguf",
        path: one,
        sizeBytes: tinyGguf("a").length,
        quantization: "Q4_K_M",
        removeCommand: `rm ${one}`,
        family: "llama",
        modifiedAt: expect.any(String),
        root
      },
      {
        store: "node-llama-cpp",
        name: "hf_mradermacher_Big.Q8_0-00001-of-00002.gguf",
        path: p1,
        sizeBytes: tinyGguf("b1").length + tinyGguf("b2").length,
        quantization: "Q8_0",
        removeCommand: `rm ${p1} ${p2}`,
        family: "llama",
        modifiedAt: expect.any(String),
        root,
        parts: [p1, p2]
      }
    ])
  })
})

// ---------------------------------------------------------------------------------------------
// Faults become warnings
// ---------------------------------------------------------------------------------------------

describe("paths are the GGUF bytes", () => {
  it("what each store lists passes the strict GGUF reader that gates llama.cpp", async () => {
    const roots = fixtureRoots(home)
    await ollamaModel(roots.ollama, { model: "llama3.2", tag: "1b", gguf: loadableGguf(1) })
    await hfCacheFile(roots.hfCache, { repo: "org/r", commit: commitId("r"), file: "r-Q4_K_M.gguf", bytes: loadableGguf(2) })
    await lmstudioModel(roots.lmstudio, { publisher: "p", repo: "r", file: "r-Q4_K_M.gguf", bytes: loadableGguf(3) })
    await nodeLlamaCppModel(roots.nodeLlamaCpp, "hf_p_r.Q4_K_M.gguf", loadableGguf(4))
    const result = await scanAll({
      ollama: [roots.ollama],
      hfCache: [roots.hfCache],
      lmstudio: [roots.lmstudio],
      nodeLlamaCpp: [roots.nodeLlamaCpp]
    })
    expect(result.models.map((m) => m.store)).toEqual(["ollama-store", "hf-cache", "lmstudio", "node-llama-cpp"])
    for (const m of result.models) {
      const bytes = await readFile(m.path)
      expect(bytes.length, m.name).toBe(m.sizeBytes)
      const parsed = parseGguf(bytes, bytes.length)
      expect(parsed._tag, m.name).toBe("Ok")
      if (parsed._tag === "Ok") expect(parsed.file.architecture).toBe("llama")
    }
  })
})

describe("faults are warnings, never crashes", () => {
  it("dangling and looping symlinks, links out of blobs/, a missing split part", async () => {
    const roots = fixtureRoots(home)
    const good = await hfCacheFile(roots.hfCache, { repo: "org/good", commit: commitId("g"), file: "good-Q4_K_M.gguf", bytes: tinyGguf("g") })
    const gone = await hfCacheFile(roots.hfCache, { repo: "org/gone", commit: commitId("x"), file: "gone-Q4_K_M.gguf", bytes: tinyGguf("x") })
    await unlink(gone.blobPath)
    const escape = join(roots.hfCache, "models--org--escape", "snapshots", commitId("e"))
    await mkdir(escape, { recursive: true })
    await symlink(join(home, "x.gguf"), join(escape, "abs-Q4_K_M.gguf"))
    await hfCacheFile(roots.hfCache, { repo: "org/split", commit: commitId("s"), file: "s-Q8_0-00001-of-00003.gguf", bytes: tinyGguf("s1") })

    const pub = join(roots.lmstudio, "pub", "repo")
    await mkdir(pub, { recursive: true })
    await symlink("self-Q4_K_M.gguf", join(pub, "self-Q4_K_M.gguf"))
    await symlink("..", join(pub, "up")) // a directory loop: pub/repo/up → pub/
    await writeFile(join(pub, "ok-Q4_K_M.gguf"), tinyGguf("ok"))

    const result = await scanAll({ ...emptyRoots, hfCache: [roots.hfCache], lmstudio: [roots.lmstudio] })
    expect(result.models.map((m) => m.path).sort()).toEqual([good.blobPath, join(pub, "ok-Q4_K_M.gguf")].sort())
    expect(result.warnings).toEqual(expect.arrayContaining([
      { store: "hf-cache", path: gone.snapshotPath, reason: "broken symlink (its target is missing)" },
      { store: "hf-cache", path: join(escape, "abs-Q4_K_M.gguf"), reason: expect.stringContaining("absolute symlink") },
      {
        store: "hf-cache",
        path: join(roots.hfCache, "models--org--split", "snapshots", commitId("s"), "s-Q8_0-00001-of-00003.gguf"),
        reason: expect.stringContaining("incomplete split model: 2 of 3 parts missing")
      },
      { store: "lmstudio", path: join(pub, "self-Q4_K_M.gguf"), reason: "symlink loop" }
    ]))
    expect(result.warnings).toHaveLength(4)
  })

  it("an unreadable directory is a warning and the rest is listed", async () => {
    const root = fixtureRoots(home).lmstudio
    await lmstudioModel(root, { publisher: "open", repo: "r", file: "a-Q4_K_M.gguf", bytes: tinyGguf("a") })
    await lmstudioModel(root, { publisher: "locked", repo: "r", file: "b-Q4_K_M.gguf", bytes: tinyGguf("b") })
    const { fs } = instrumentedFs({ denied: (p) => p === join(root, "locked") })
    const result = await scanLmStudio([root], { fs })
    expect(result.models.map((m) => m.name)).toEqual(["open/r/a-Q4_K_M.gguf"])
    expect(result.warnings).toEqual([{ store: "lmstudio", path: join(root, "locked"), reason: "permission denied" }])
  })

  it("malformed manifests, a vanished blob, a blob of the wrong size, a manifest deleted between readdir and read", async () => {
    const root = fixtureRoots(home).ollama
    await ollamaModel(root, { model: "fine", gguf: tinyGguf("fine") })
    const noBlob = await ollamaModel(root, { model: "noblob", gguf: tinyGguf("nb") })
    await unlink(noBlob.blobPath)
    const short = await ollamaModel(root, { model: "short", gguf: tinyGguf("short") })
    await writeFile(short.blobPath, tinyGguf("short").slice(0, 10))
    const racing = await ollamaModel(root, { model: "racing", gguf: tinyGguf("r") })
    const dir = join(root, "manifests", "registry.ollama.ai", "library")
    await mkdir(join(dir, "notjson"))
    await writeFile(join(dir, "notjson", "latest"), "{ this is not json")
    await mkdir(join(dir, "nolayers"))
    await writeFile(join(dir, "nolayers", "latest"), JSON.stringify({ schemaVersion: 2, config: {} }))
    await mkdir(join(dir, "baddigest"))
    await writeFile(
      join(dir, "baddigest", "latest"),
      JSON.stringify({
        schemaVersion: 2,
        config: { mediaType: "x", digest: "sha256:00", size: 1 },
        layers: [{ mediaType: "application/vnd.ollama.image.model", digest: "md5:abc", size: 1 }]
      })
    )
    // The owner removes `racing` after we listed its folder and before we read its manifest.
    const { fs } = instrumentedFs({
      before: async (op, path) => {
        if (op === "readText" && path === racing.manifestPath) await unlink(racing.manifestPath).catch(() => undefined)
      }
    })

    const result = await scanOllama([root], { fs })
    expect(result.models.map((m) => m.name)).toEqual(["fine:latest"])
    const byPath = Object.fromEntries(result.warnings.map((w) => [w.path, w.reason]))
    expect(byPath).toEqual({
      [noBlob.blobPath]: "vanished or missing",
      [short.blobPath]: `size 10 differs from the manifest's ${tinyGguf("short").length}`,
      [racing.manifestPath]: "vanished or missing",
      [join(dir, "notjson", "latest")]: expect.stringContaining("malformed manifest"),
      [join(dir, "nolayers", "latest")]: expect.stringContaining("malformed manifest"),
      [join(dir, "baddigest", "latest")]: 'unsupported digest "md5:abc"'
    })
  })

  it("absent roots are absent stores: nothing listed, nothing to warn about", async () => {
    const roots = fixtureRoots(join(home, "nobody"))
    const result = await scanAll({
      ollama: [roots.ollama],
      hfCache: [roots.hfCache],
      lmstudio: [roots.lmstudio],
      nodeLlamaCpp: [roots.nodeLlamaCpp]
    })
    expect(result).toEqual({ models: [], warnings: [] })
  })
})

// ---------------------------------------------------------------------------------------------
// A whole machine, read-only, in one pass, interruptible
// ---------------------------------------------------------------------------------------------

describe("scanAll", () => {
  it("lists 200 models across the four stores in one pass, reading each directory once and writing nothing", async () => {
    const { roots, names } = await populatedMachine(home, 50)
    const before = await treeState(home)
    const { fs, readdirCalls } = instrumentedFs()
    const result = await scanAll(
      { ollama: [roots.ollama], hfCache: [roots.hfCache], lmstudio: [roots.lmstudio], nodeLlamaCpp: [roots.nodeLlamaCpp] },
      { fs }
    )
    expect(result.warnings).toEqual([])
    expect(result.models).toHaveLength(200)
    for (const store of ["ollama-store", "hf-cache", "lmstudio", "node-llama-cpp"] as const) {
      expect(result.models.filter((m) => m.store === store).map((m) => m.name).sort(), store).toEqual([...names[store]!].sort())
    }
    // Every model's sha256, where the layout states one, is the real hash of the bytes at `path`.
    for (const m of result.models.filter((m) => m.sha256 !== undefined)) {
      expect(sha256Hex(await readFile(m.path))).toBe(m.sha256)
    }
    expect([...readdirCalls.values()].every((n) => n === 1)).toBe(true)
    expect(await treeState(home)).toEqual(before)
  })

  it("is interrupted while a file-system call hangs, and starts no call after", async () => {
    const { roots } = await populatedMachine(home, 2)
    let callsAfter = 0
    let interrupted = false
    const exit = await Effect.runPromise(Effect.gen(function*() {
      const reached = yield* Deferred.make<void>()
      const { fs } = instrumentedFs({
        before: (op) => {
          if (interrupted) callsAfter++
          return op === "readText"
            ? Effect.runPromise(Deferred.succeed(reached, undefined)).then(() => new Promise<void>(() => {}))
            : undefined
        }
      })
      const fiber = yield* Effect.fork(Effect.provideService(Scan.scanAll({ ...emptyRoots, ollama: [roots.ollama] }), ScanFs, fs))
      yield* Deferred.await(reached)
      yield* Fiber.interrupt(fiber)
      interrupted = true
      return yield* Fiber.await(fiber)
    }))
    expect(Exit.isInterrupted(exit)).toBe(true)
    expect(callsAfter).toBe(0)
  })
})
