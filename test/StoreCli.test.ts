/**
 * The store items of issue 9 through the built CLI (`dist/cli.js`; build first): Ctrl-C while a pull waits
 * on another pull's lock, unusable and relative `--models-dir`, unknown hub repos, pasted hub addresses,
 * `model remove` confirmation (listing, no TTY, `--yes`, `--json`), and the QUANT of a dropped-in GGUF.
 */
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { slugOf } from "../src/domain/HubRef.js"
import { type FakeHub, ggufContent, startFakeHub } from "./fixtures/fakeHub.js"
import { bin, ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

let dir: string
let hub: FakeHub
let missing: FakeHub

const env = (models: string, extra: Record<string, string> = {}) =>
  isolatedEnv(dir, { HF_ENDPOINT: hub.url, LLMSPELL_MODELS_DIR: models, ...extra })
const run = (args: ReadonlyArray<string>, models = join(dir, "models"), extra: Record<string, string> = {}) =>
  runCli(args, { cwd: dir, env: env(models, extra) })

beforeAll(async () => {
  ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), "llmspell-store-cli-"))
  hub = await startFakeHub({ pageSize: 50 })
  missing = await startFakeHub({ missingRepo: { status: 401, code: "RepoNotFound" } })
  await hub.addRepo({
    name: "org/repo",
    files: [
      { path: "repo-Q4_K_M.gguf", content: ggufContent("store-cli-q4", 30_000) },
      { path: "repo-Q8_0.gguf", content: ggufContent("store-cli-q8", 20_000, 7) }
    ]
  })
})

afterAll(async () => {
  await Promise.all([hub.close(), missing.close()])
  await rm(dir, { recursive: true, force: true })
})

describe("Ctrl-C while waiting on another pull's lock (items 2, 5)", () => {
  /** Starts a pull that waits on a held lock, sends SIGINT once it says so, and waits for the exit. */
  const interruptWhileWaiting = async (models: string) => {
    // The file name and `org/repo:Q8_0` are one file: this pull waits on that lock.
    const child = spawn(process.execPath, [bin, "model", "pull", "org/repo/repo-Q8_0.gguf"], {
      cwd: dir,
      env: env(models),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stderr = ""
    const waiting = new Promise<void>((resolve) =>
      child.stderr.on("data", (c: Buffer) => {
        stderr += c.toString("utf8")
        if (stderr.includes("on another pull")) resolve()
      })
    )
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    await waiting
    child.kill("SIGINT")
    return { code: await exited, stderr }
  }

  it("exits 130 on SIGINT, leaving the holder's lock and nothing else", async () => {
    const models = join(dir, "locked")
    const lock = join(models, "locks", `${slugOf("hub/org/repo/repo-Q8_0.gguf")}.lock`)
    // A lock as another live pull holds it (store/fileLock.ts: a directory, the holder in owner.json).
    const holder = JSON.stringify({ pid: process.pid, host: hostname(), startedAt: "x" })
    await mkdir(lock, { recursive: true })
    await writeFile(join(lock, "owner.json"), holder)

    // The holder is this process, alive until the test ends: before the fix the wait ignored SIGINT until
    // the lock was free, so the pull never exited. That the wait does not even wait for its next poll is
    // FileLock.test.ts's, on the TestClock; a bound in milliseconds here would only measure the machine's load.
    const { code, stderr } = await interruptWhileWaiting(models)
    expect(code).toBe(130)
    expect(stderr).toContain("waiting on another pull of org/repo/repo-Q8_0.gguf (pid")
    expect(stderr).not.toContain("waiting waiting")
    expect(await readFile(join(lock, "owner.json"), "utf8")).toBe(holder)
    expect(await readdir(lock)).toEqual(["owner.json"])
    expect(await readdir(join(models, "locks"))).toEqual([lock.split("/").at(-1)])
    expect(existsSync(join(models, "hub"))).toBe(false)
  })
})

describe("--models-dir (items 3, 22)", () => {
  it("an unusable directory fails at once with exit 1, naming it and the OS reason", async () => {
    const file = join(dir, "plain-file")
    await writeFile(file, "x")
    for (const [models, reason] of [["/proc/nope", "ENOENT"], [file, "ENOTDIR"]] as const) {
      const result = await runCli(["model", "pull", "org/repo:Q8_0", "--models-dir", models], { cwd: dir, env: env(join(dir, "unused")) })
      expect(result.code).toBe(1)
      expect(result.stderr).toContain(models)
      expect(result.stderr).toContain(reason)
      expect(result.stderr).toContain("--models-dir")
    }
  })

  it("a relative directory is printed absolute", async () => {
    const result = await runCli(["model", "pull", "org/repo:Q8_0", "--models-dir", "rel/models"], {
      cwd: dir,
      env: env(join(dir, "unused"))
    })
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(` to ${join(dir, "rel/models/hub/org/repo/repo-Q8_0.gguf")}`)
    await writeFile(join(dir, "rel/models/loose.gguf"), ggufContent("loose", 5_000))
    const listed = await runCli(["model", "list", "--backend", "gguf", "--json", "--models-dir", "rel/models"], {
      cwd: dir,
      env: env(join(dir, "unused"))
    })
    expect(listed.code).toBe(0)
    const paths = JSON.parse(listed.stdout).models.map((m: { path: string }) => m.path)
    expect(paths.sort()).toEqual([join(dir, "rel/models/hub/org/repo/repo-Q8_0.gguf"), join(dir, "rel/models/loose.gguf")])
  })

  it("a GGUF dropped into the directory gets its QUANT from the header", async () => {
    const models = join(dir, "dropped")
    await mkdir(models, { recursive: true })
    await writeFile(join(models, "my-model.gguf"), ggufContent("dropped", 5_000, 7))
    const listed = await run(["model", "list", "--backend", "gguf", "--json"], models)
    expect(listed.code).toBe(0)
    expect(JSON.parse(listed.stdout).models).toEqual([
      expect.objectContaining({ name: "my-model.gguf", quantization: "Q8_0" })
    ])
  })
})

describe("hub names (item 11)", () => {
  it("a repo the hub does not know (401 + RepoNotFound) is exit 3 with 'check the name' and the catalog", async () => {
    const result = await run(["model", "pull", "org/no-such-repo:Q4_K_M"], join(dir, "models"), { HF_ENDPOINT: missing.url })
    expect(result.code).toBe(3)
    expect(result.stderr).toContain("org/no-such-repo")
    expect(result.stderr).toContain("check the name")
    expect(result.stderr).toContain("llmspell model available")
    expect(result.stderr).not.toContain("HF_TOKEN (or")
  })

  it("a pasted hub address pulls the file it names", async () => {
    const result = await run(["model", "pull", `https://huggingface.co/org/repo/blob/main/repo-Q8_0.gguf`, "--json"], join(dir, "pasted"))
    expect(result.code).toBe(0)
    const last = JSON.parse(result.stdout.trim().split("\n").at(-1)!)
    expect(last.result).toMatchObject({ model: "org/repo/repo-Q8_0.gguf", alreadyPresent: false })
  })
})

describe("model remove (items 1, 19)", () => {
  it("without a terminal: refuses without --yes (exit 2, nothing deleted); --yes --json removes", async () => {
    const models = join(dir, "remove")
    expect((await run(["model", "pull", "org/repo:Q8_0"], models)).code).toBe(0)
    const file = join(models, "hub/org/repo/repo-Q8_0.gguf")
    const refused = await run(["model", "remove", "org/repo:Q8_0"], models)
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain("llmspell model remove org/repo:Q8_0 --yes")
    expect(existsSync(file)).toBe(true)
    const removed = await run(["model", "remove", "org/repo:Q8_0", "--yes", "--json"], models)
    expect(removed.code).toBe(0)
    expect(JSON.parse(removed.stdout)).toMatchObject({ model: "org/repo:Q8_0", removedFiles: [file], freedBytes: 20_000 })
    expect(existsSync(file)).toBe(false)
  })

  it.runIf(process.platform === "linux" && existsSync("/usr/bin/script"))(
    "on a terminal: lists every file and the bytes it frees before asking; 'n' keeps it",
    async () => {
      const models = join(dir, "remove-tty")
      expect((await run(["model", "pull", "org/repo:Q4_K_M"], models)).code).toBe(0)
      const command = `'${process.execPath}' '${bin}' model remove org/repo:Q4_K_M`
      const result = await runCli([], {
        cwd: dir,
        env: { ...env(models), PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
        command: "sh",
        argv: ["-c", `printf 'n\\n' | script -qec "${command}" /dev/null`]
      })
      const file = join(models, "hub/org/repo/repo-Q4_K_M.gguf")
      const shown = result.stdout.replace(/\r/g, "")
      expect(shown).toContain(`${file} (29.3 KiB)`)
      expect(shown).toContain("frees 29.3 KiB")
      expect(shown.indexOf("frees")).toBeLessThan(shown.indexOf("remove org/repo:Q4_K_M from gguf? [y/N]"))
      expect(shown).toContain("not removed")
      expect(existsSync(file)).toBe(true)
    }
  )
})
