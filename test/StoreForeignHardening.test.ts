/**
 * Hostile foreign stores (issue 19 items 15, 16, 17): whatever another tool's folder holds, a listing
 * ends, stays inside the store, and names what it skipped; a remove never names a link's target.
 *
 * - A FIFO, socket or device where a store keeps a file (an Ollama config blob or manifest, an HF
 *   `refs/main`, the LM Studio home pointer, our own manifests and inventory cache) is a warning, never an
 *   open() that waits for a writer (which hung `model list` and ignored SIGTERM).
 * - A folder link leaving its store is a warning, never followed (`manifests/rootlink -> /` walked the
 *   whole disk until the heap ran out; HF and LM Studio links listed GGUF files from anywhere); loops end;
 *   a scan is bounded in entries and bytes.
 * - `lms import -l` links are models (a GGUF anywhere), named by the link: `rm <link>`, never the target.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { execFileSync, spawn } from "node:child_process"
import { closeSync, constants, openSync } from "node:fs"
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, unlink, writeFile } from "node:fs/promises"
import { createServer, type Server } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { layerFromObject } from "../src/layers/ConfigLive.js"
import * as Scan from "../src/layers/store/foreign/scan.js"
import * as ModelStoreLive from "../src/layers/store/ModelStoreLive.js"
import * as ScanFsLive from "../src/layers/store/scanFs.js"
import { ScanFs } from "../src/layers/store/scanFs.js"
import { ModelStore } from "../src/services/ModelStore.js"
import { commitId, fixtureRoots, hfCacheFile, lmstudioModel, ollamaModel, tinyGguf } from "./fixtures/foreignStores.js"
import { bin, ensureBuilt, isolatedEnv } from "./support/runCli.js"

let home: string
const fifos: Array<string> = []
const servers: Array<Server> = []

beforeAll(() => ensureBuilt())
beforeEach(async () => {
  home = await realpath(await mkdtemp(join(tmpdir(), "llmspell-hostile-")))
})
afterEach(async () => {
  // Had a regression opened a FIFO and blocked on it, a writer's open releases it (the reader sees EOF).
  for (const fifo of fifos.splice(0)) {
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK))
    } catch {
      // no reader waiting: nothing to release
    }
  }
  for (const server of servers.splice(0)) server.close()
  await rm(home, { recursive: true, force: true })
})

const mkfifo = (path: string) => {
  execFileSync("mkfifo", [path])
  fifos.push(path)
}

/** A listening Unix socket at `path`. */
const unixSocket = (path: string) =>
  new Promise<void>((resolve) => {
    const server = createServer()
    servers.push(server)
    server.listen(path, () => resolve())
  })

const own = () => ({ directory: join(home, "own"), instance: "gguf" })

const storeLayer = () =>
  ModelStoreLive.layer.pipe(
    Layer.provide(Layer.merge(NodeFileSystem.layer, ScanFsLive.layer)),
    Layer.provide(layerFromObject({}, { env: {}, home }))
  )

const withStore = <A, E>(effect: Effect.Effect<A, E, ModelStore>) => Effect.runPromise(Effect.provide(effect, storeLayer()))
const list = () => withStore(Effect.flatMap(ModelStore, (s) => s.list(own())))
const find = (ref: string) => withStore(Effect.flatMap(ModelStore, (s) => s.find(ref, own())))
const removeModel = (ref: string) => withStore(Effect.flip(Effect.flatMap(ModelStore, (s) => s.remove(ref, own()))))

/** The config blob an Ollama manifest names. */
const configBlobOf = async (root: string, manifestPath: string) => {
  const manifest = JSON.parse(await readFile(manifestPath, "utf8")) as { config: { digest: string } }
  return join(root, "blobs", manifest.config.digest.replace(":", "-"))
}

describe("a FIFO, socket or device where a store keeps a file is a warning, never a wait (item 15)", () => {
  it("an Ollama config blob that is a FIFO: the model is listed and found, the FIFO named in a warning", async () => {
    const root = fixtureRoots(home).ollama
    // tinyGguf has no general.file_type, so the config blob is what the scan reads for the quantization
    const model = await ollamaModel(root, { model: "qwen2.5", tag: "0.5b", gguf: tinyGguf("q"), fileType: "Q8_0" })
    const config = await configBlobOf(root, model.manifestPath)
    await unlink(config)
    mkfifo(config)

    const inventory = await list()
    expect(inventory.models.map((m) => m.name)).toEqual(["qwen2.5:0.5b"])
    expect(inventory.warnings).toEqual([{ store: "ollama-store", path: config, reason: expect.stringContaining("FIFO") }])
    // a targeted find (what serve's /api/show and /api/generate do) ends too
    expect(Option.getOrThrow(await find("qwen2.5:0.5b")).path).toBe(model.blobPath)
  })

  it("a manifest that is a FIFO or a socket, an HF refs/main and the LM Studio home pointer that are FIFOs", async () => {
    const roots = fixtureRoots(home)
    await ollamaModel(roots.ollama, { model: "fine", gguf: tinyGguf("fine") })
    const manifests = join(roots.ollama, "manifests", "registry.ollama.ai", "library")
    await mkdir(join(manifests, "fifo"), { recursive: true })
    mkfifo(join(manifests, "fifo", "latest"))
    await mkdir(join(manifests, "sock"), { recursive: true })
    await unixSocket(join(manifests, "sock", "latest"))
    const hf = await hfCacheFile(roots.hfCache, { repo: "org/r", commit: commitId("r"), file: "r-Q4_K_M.gguf", bytes: tinyGguf("r") })
    await unlink(join(hf.repoDir, "refs", "main"))
    mkfifo(join(hf.repoDir, "refs", "main"))
    mkfifo(join(home, ".lmstudio-home-pointer"))

    const inventory = await list()
    expect(inventory.models.map((m) => m.name).sort()).toEqual(["fine:latest", "hf.co/org/r:Q4_K_M"])
    expect(inventory.warnings).toEqual(expect.arrayContaining([
      { store: "ollama-store", path: join(manifests, "fifo", "latest"), reason: expect.stringContaining("FIFO") },
      { store: "ollama-store", path: join(manifests, "sock", "latest"), reason: expect.stringContaining("socket") },
      { store: "hf-cache", path: join(hf.repoDir, "refs", "main"), reason: expect.stringContaining("FIFO") }
    ]))
  })

  it("a FIFO or a device in place of a model file, and in llmspell's own manifests and inventory cache", async () => {
    const roots = fixtureRoots(home)
    const blobModel = await ollamaModel(roots.ollama, { model: "blobfifo", gguf: tinyGguf("b") })
    await unlink(blobModel.blobPath)
    mkfifo(blobModel.blobPath)
    await mkdir(join(roots.lmstudio, "pub", "Repo-GGUF"), { recursive: true })
    mkfifo(join(roots.lmstudio, "pub", "Repo-GGUF", "fifo-Q4_K_M.gguf"))
    // a device, reached through a link: a file link out of the store is accepted only to a GGUF
    await symlink("/dev/zero", join(roots.lmstudio, "pub", "Repo-GGUF", "zero-Q4_K_M.gguf"))
    await lmstudioModel(roots.lmstudio, { publisher: "pub", repo: "Repo-GGUF", file: "ok-Q4_K_M.gguf", bytes: tinyGguf("ok") })
    await mkdir(join(own().directory, "manifests"), { recursive: true })
    mkfifo(join(own().directory, "manifests", "x.json"))
    await mkdir(join(own().directory, ".cache"), { recursive: true })
    mkfifo(join(own().directory, ".cache", "inventory.json"))

    const inventory = await list()
    expect(inventory.models.map((m) => m.name)).toEqual(["pub/Repo-GGUF/ok-Q4_K_M.gguf"])
    expect(inventory.warnings).toEqual(expect.arrayContaining([
      { store: "ollama-store", path: blobModel.blobPath, reason: expect.stringContaining("FIFO") },
      { store: "lmstudio", path: join(roots.lmstudio, "pub", "Repo-GGUF", "fifo-Q4_K_M.gguf"), reason: expect.stringContaining("FIFO") },
      {
        store: "lmstudio",
        path: join(roots.lmstudio, "pub", "Repo-GGUF", "zero-Q4_K_M.gguf"),
        reason: expect.stringContaining("character device")
      }
    ]))
  })

  it("`model list` and `model status` through the CLI end, exit 0; status names the FIFO it skipped", async () => {
    const root = fixtureRoots(home).ollama
    const model = await ollamaModel(root, { model: "qwen2.5", gguf: tinyGguf("q") })
    const config = await configBlobOf(root, model.manifestPath)
    await unlink(config)
    mkfifo(config)
    const listed = await runBounded(["model", "list", "--backend", "gguf"])
    expect(listed.code).toBe(0)
    expect(listed.stdout).toContain("qwen2.5:latest")
    const status = await runBounded(["model", "status", "--backend", "gguf", "--json"])
    expect(status.code).toBe(0)
    expect(status.stdout).toContain(`${config}: a FIFO (named pipe), not a regular file`)
  })
})

/** Runs the CLI; a run that outlives the test is killed (it would be a hang: the test then fails on its exit code). */
const runBounded = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: home,
      env: isolatedEnv(home, { LLMSPELL_MODELS_DIR: own().directory }),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (c: Buffer) => void (stdout += c.toString("utf8")))
    child.stderr.on("data", (c: Buffer) => void (stderr += c.toString("utf8")))
    // not an assertion on time: a hung child must not outlive the test file (SIGTERM is what it ignored)
    const guard = setTimeout(() => child.kill("SIGKILL"), 25_000)
    child.on("close", (code) => {
      clearTimeout(guard)
      resolve({ code, stdout, stderr })
    })
  })

describe("links that leave a store are warnings, not followed; scans end (item 16)", () => {
  /** A tree outside every store holding what a followed link would list. */
  const outsideTree = async () => {
    const outside = join(home, "elsewhere")
    await mkdir(join(outside, "Repo-GGUF"), { recursive: true })
    await writeFile(join(outside, "Repo-GGUF", "stray-Q4_K_M.gguf"), tinyGguf("stray"))
    await writeFile(join(outside, "stray-Q8_0.gguf"), tinyGguf("stray8"))
    return outside
  }

  it("Ollama: manifests/rootlink -> / and a link to a manifest tree elsewhere are not walked", async () => {
    const root = fixtureRoots(home).ollama
    await ollamaModel(root, { model: "fine", gguf: tinyGguf("fine") })
    // a complete manifest tree outside the store, whose blob is in the store: a followed link would list it
    const elsewhere = join(home, "elsewhere-manifests")
    const stray = await ollamaModel(join(home, "other-ollama"), { model: "stray", gguf: tinyGguf("stray") })
    await mkdir(join(elsewhere, "library", "stray"), { recursive: true })
    await writeFile(join(elsewhere, "library", "stray", "latest"), await readFile(stray.manifestPath))
    await mkdir(join(root, "blobs"), { recursive: true })
    await writeFile(join(root, "blobs", `sha256-${stray.sha256}`), tinyGguf("stray"))
    await symlink("/", join(root, "manifests", "rootlink"))
    await symlink(elsewhere, join(root, "manifests", "registry.ollama.ai", "evil"))

    const inventory = await list()
    expect(inventory.models.map((m) => m.name)).toEqual(["fine:latest"])
    expect(inventory.warnings).toEqual(expect.arrayContaining([
      { store: "ollama-store", path: join(root, "manifests", "rootlink"), reason: "a link to a folder outside the store: not followed" },
      {
        store: "ollama-store",
        path: join(root, "manifests", "registry.ollama.ai", "evil"),
        reason: "a link to a folder outside the store: not followed"
      }
    ]))
  })

  it("HF cache: snapshots/<commit>/root -> elsewhere lists nothing from there; its blobs/ may not lead out either", async () => {
    const roots = fixtureRoots(home)
    const outside = await outsideTree()
    const good = await hfCacheFile(roots.hfCache, { repo: "org/good", commit: commitId("g"), file: "good-Q4_K_M.gguf", bytes: tinyGguf("g") })
    const snapshot = join(good.repoDir, "snapshots", commitId("g"))
    await symlink(outside, join(snapshot, "root"))
    await symlink("/", join(snapshot, "slash"))
    // a repo whose blobs folder is a link out of the cache: its snapshot links would resolve there
    const bad = await hfCacheFile(roots.hfCache, { repo: "org/bad", commit: commitId("b"), file: "bad-Q4_K_M.gguf", bytes: tinyGguf("b") })
    const movedBlobs = join(home, "moved-blobs")
    await rm(join(bad.repoDir, "blobs"), { recursive: true })
    await mkdir(movedBlobs)
    await writeFile(join(movedBlobs, bad.etag), tinyGguf("b"))
    await symlink(movedBlobs, join(bad.repoDir, "blobs"))

    const inventory = await list()
    expect(inventory.models.map((m) => m.path)).toEqual([good.blobPath])
    expect(inventory.models.every((m) => !m.path.startsWith(outside) && !m.path.startsWith(movedBlobs))).toBe(true)
    expect(inventory.warnings).toEqual(expect.arrayContaining([
      { store: "hf-cache", path: join(snapshot, "root"), reason: "a link to a folder outside the store: not followed" },
      { store: "hf-cache", path: join(snapshot, "slash"), reason: "a link to a folder outside the store: not followed" },
      { store: "hf-cache", path: join(bad.repoDir, "blobs"), reason: "a link to a folder outside the cache: not followed" }
    ]))
  })

  it("LM Studio: models/pub/root -> elsewhere and -> / list nothing from there; loops end; links inside the store are fine", async () => {
    const root = fixtureRoots(home).lmstudio
    const outside = await outsideTree()
    await lmstudioModel(root, { publisher: "pub", repo: "Real-GGUF", file: "real-Q4_K_M.gguf", bytes: tinyGguf("real") })
    await symlink(outside, join(root, "pub", "root"))
    await symlink("/", join(root, "slash"))
    await symlink(".", join(root, "pub", "self")) // a -> .
    await symlink(join(root, "pub", "y"), join(root, "pub", "x")) // x -> y -> x
    await symlink(join(root, "pub", "x"), join(root, "pub", "y"))
    await symlink(join(root, "pub"), join(root, "alias")) // inside the store: the same folder, read once

    const inventory = await list()
    expect(inventory.models.map((m) => m.name)).toEqual(["pub/Real-GGUF/real-Q4_K_M.gguf"])
    expect(inventory.warnings).toEqual(expect.arrayContaining([
      { store: "lmstudio", path: join(root, "pub", "root"), reason: "a link to a folder outside the store: not followed" },
      { store: "lmstudio", path: join(root, "slash"), reason: "a link to a folder outside the store: not followed" },
      { store: "lmstudio", path: join(root, "pub", "x"), reason: "symlink loop" }
    ]))
  })

  it("a folder over the entry limit, and a store over the scan's budget, end with what was found and a warning", async () => {
    const root = fixtureRoots(home).lmstudio
    await mkdir(join(root, "pub", "Big-GGUF"), { recursive: true })
    for (let i = 0; i < 30; i++) await writeFile(join(root, "pub", "Big-GGUF", `f${String(i).padStart(2, "0")}-Q4_K_M.gguf`), tinyGguf(`f${i}`))
    const scan = (limits: Scan.ScanLimits) =>
      Effect.runPromise(Effect.provideService(Scan.scanLmStudio([root], { limits }), ScanFs, ScanFsLive.make))

    const perFolder = await scan({ ...Scan.DEFAULT_LIMITS, maxDirectoryEntries: 10 })
    expect(perFolder.models).toHaveLength(10)
    expect(perFolder.warnings).toEqual([
      { store: "lmstudio", path: join(root, "pub", "Big-GGUF"), reason: "more than 10 entries: only the first 10 were looked at" }
    ])
    const total = await scan({ ...Scan.DEFAULT_LIMITS, maxEntries: 20 })
    expect(total.models).toEqual([])
    expect(total.warnings).toEqual([{ store: "lmstudio", path: join(root, "pub", "Big-GGUF"), reason: expect.stringContaining("the scan stopped here") }])
    const bytes = await scan({ ...Scan.DEFAULT_LIMITS, maxBytes: 1000 })
    expect(bytes.models.length).toBeLessThan(30)
    expect(bytes.warnings.some((w) => w.reason.includes("the scan stopped here"))).toBe(true)
  })
})

describe("a model that is a link is removed by its link, never its target (item 17)", () => {
  it("`lms import -l`: listed, its remove command and the refusal name the link; a link to a non-GGUF is not a model", async () => {
    const root = fixtureRoots(home).lmstudio
    const downloads = join(home, "Downloads")
    await mkdir(downloads)
    await writeFile(join(downloads, "real-model.gguf"), tinyGguf("imported"))
    await writeFile(join(downloads, "shadow"), "root:$6$secret:19000:0:99999:7:::\n")
    await mkdir(join(root, "pub", "Imported-GGUF"), { recursive: true })
    await mkdir(join(root, "pub", "Evil-GGUF"), { recursive: true })
    const link = join(root, "pub", "Imported-GGUF", "model-Q4_K_M.gguf")
    const evil = join(root, "pub", "Evil-GGUF", "shadow-Q4_K_M.gguf")
    await symlink(join(downloads, "real-model.gguf"), link)
    await symlink(join(downloads, "shadow"), evil)

    const inventory = await list()
    expect(inventory.models.map((m) => m.name)).toEqual(["pub/Imported-GGUF/model-Q4_K_M.gguf"])
    expect(inventory.models[0]!.locations[0]!.removeCommand).toBe(`rm ${link}`)
    expect(inventory.warnings).toEqual([{ store: "lmstudio", path: evil, reason: expect.stringContaining("not a usable GGUF file") }])
    expect(JSON.stringify(inventory.warnings)).not.toContain(join(downloads, "shadow"))

    const refused = await removeModel("pub/Imported-GGUF/model-Q4_K_M.gguf")
    expect(refused._tag).toBe("BackendError")
    const said = `${refused.message}\n${(refused as { hint?: string }).hint}`
    expect(said).toContain(`rm ${link}`)
    expect(said).toContain(link)
    expect(said).not.toContain(downloads)

    const notAModel = await removeModel("pub/Evil-GGUF/shadow-Q4_K_M.gguf")
    expect(notAModel._tag).toBe("ModelNotFound")
    expect(`${notAModel.message}\n${(notAModel as { hint?: string }).hint}`).not.toContain(downloads)
  })

  it("through the CLI: `model remove` names the link and LM Studio's way to remove it", async () => {
    const root = fixtureRoots(home).lmstudio
    const downloads = join(home, "Downloads")
    await mkdir(downloads)
    await writeFile(join(downloads, "real-model.gguf"), tinyGguf("imported"))
    await mkdir(join(root, "pub", "Imported-GGUF"), { recursive: true })
    const link = join(root, "pub", "Imported-GGUF", "model-Q4_K_M.gguf")
    await symlink(join(downloads, "real-model.gguf"), link)
    const result = await runBounded(["model", "remove", "pub/Imported-GGUF/model-Q4_K_M.gguf", "--yes"])
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain(`rm ${link}`)
    expect(result.stderr).not.toContain(downloads)
    // nothing was deleted
    expect((await readFile(join(downloads, "real-model.gguf"))).length).toBe(tinyGguf("imported").length)
  })
})
