/**
 * The bad-input corpus: the built CLI (`dist/cli.js`) over many malformed specs, options and model
 * files, against the fake Ollama server and the fake hub. Whatever the input, the process ends with
 * a typed error (exit 1–4, an `error:` line, a `hint:`), never "this is a bug in llmspell", never a
 * hang, and no input reaches a backend it was not meant for.
 */
import { execFileSync, spawn } from "node:child_process"
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeHub, startFakeHub } from "./fixtures/fakeHub.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { encodeGgufHeader, v } from "./fixtures/ggufWriter.js"
import { bin, type CliResult, ensureBuilt, isolatedEnv } from "./support/runCli.js"

let dir: string
let fake: FakeOllama
let hub: FakeHub

// A hang is one of the defects this corpus looks for: a watchdog kills a run that has not ended after
// HANG_MS (far beyond any refusal, which takes a process start), and the run counts as hung.
const HANG_MS = 30_000

const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<CliResult & { hung: boolean }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: dir,
      env: isolatedEnv(dir, {
        OLLAMA_HOST: `${fake.host}:${fake.port}`,
        HF_ENDPOINT: hub.url,
        LLMSPELL_MODELS_DIR: join(dir, "models"),
        ...env
      }),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    let hung = false
    const watchdog = setTimeout(() => {
      hung = true
      child.kill("SIGKILL")
    }, HANG_MS)
    child.stdout.on("data", (c: Buffer) => void (stdout += c.toString("utf8")))
    child.stderr.on("data", (c: Buffer) => void (stderr += c.toString("utf8")))
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(watchdog)
      resolve({ code, stdout, stderr, hung })
    })
  })

/** Runs `items` with at most `limit` CLI processes at a time (the machine has two cores). */
const pool = async <A, B>(items: ReadonlyArray<A>, limit: number, f: (a: A) => Promise<B>): Promise<Array<B>> => {
  const out: Array<B> = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await f(items[i]!)
      }
    })
  )
  return out
}

/** What is wrong with one run's outcome, or undefined when it is a clean refusal. */
const problem = (args: ReadonlyArray<string>, result: CliResult & { hung: boolean }): string | undefined => {
  const wrong = [
    ...(result.hung ? [`still running after ${HANG_MS} ms`] : []),
    ...([1, 2, 3, 4].includes(result.code ?? -1) ? [] : [`exit ${result.code}`]),
    ...(/^error: /m.test(result.stderr) ? [] : ["no error: line"]),
    ...(/bug in llmspell|unexpected/.test(`${result.stderr}${result.stdout}`) ? ["an unexpected error"] : [])
  ]
  return wrong.length === 0
    ? undefined
    : `llmspell ${args.map((a) => JSON.stringify(a)).join(" ")}: ${wrong.join(", ")}\n${result.stderr}${result.stdout}`
}

/** Runs every case and expects each to be refused cleanly; reports all offenders at once. */
const expectAllClean = async (cases: ReadonlyArray<ReadonlyArray<string>>) => {
  const results = await pool(cases, 3, (args) => run(args))
  expect(cases.flatMap((args, i) => problem(args, results[i]!) ?? [])).toEqual([])
}

beforeAll(async () => {
  ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), "llmspell-bad-input-"))
  fake = await startFakeOllama({ models: [fakeModel("present")], answer: () => "ok" })
  hub = await startFakeHub()
  await mkdir(join(dir, "models"))
  await mkdir(join(dir, "a-directory.gguf"))
  await writeFile(join(dir, "empty.gguf"), "")
  await writeFile(join(dir, "text.gguf"), "this is not a model\n")
  await writeFile(join(dir, "magic-then-garbage.gguf"), Buffer.concat([Buffer.from("GGUF"), Buffer.alloc(64, 0xff)]))
  const { header } = encodeGgufHeader({ metadata: [["general.architecture", v.str("llama")]], tensors: [] })
  await writeFile(join(dir, "truncated.gguf"), header.subarray(0, 30))
  await writeFile(join(dir, "huge.gguf"), "")
  await truncate(join(dir, "huge.gguf"), 8 * 1024 ** 3) // sparse: 8 GiB of zeros on no disk
  // a header whose first key claims 500 MB, in a sparse 1 GiB file: refused before it is read whole
  const claim = Buffer.alloc(32)
  claim.write("GGUF", 0, "latin1")
  claim.writeUInt32LE(3, 4)
  claim.writeBigUInt64LE(0n, 8)
  claim.writeBigUInt64LE(1n, 16)
  claim.writeBigUInt64LE(500n * 1024n * 1024n, 24)
  await writeFile(join(dir, "huge-header.gguf"), claim)
  await truncate(join(dir, "huge-header.gguf"), 1024 ** 3)
  await writeFile(join(dir, "ünïcødé 🦙.gguf"), "nope")
  await writeFile(join(dir, "new\nline.gguf"), "nope")
  await symlink(join(dir, "loop-b.gguf"), join(dir, "loop-a.gguf"))
  await symlink(join(dir, "loop-a.gguf"), join(dir, "loop-b.gguf"))
  await symlink(join(dir, "nowhere.gguf"), join(dir, "dangling.gguf"))
  execFileSync("mkfifo", [join(dir, "fifo.gguf")])
  await writeFile(join(dir, "bare.gguf"), "nope")
}, 60_000)

afterAll(async () => {
  await fake?.close()
  await hub?.close()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

const SPECS = [
  "",
  " ",
  "@",
  "x@",
  "@ollama",
  "x@nope",
  "x@@ollama",
  "a\u0007b",
  "a\u001b[31mred",
  "tab\there",
  "\u202eevil",
  "x".repeat(600),
  "..",
  ".",
  "/",
  "//",
  "a//b",
  "org/../repo",
  "local/",
  "ollama/",
  "openai/gpt-4o",
  "nosuchprovider/x@ollama",
  "file://",
  "file://host/x.gguf",
  "file:///",
  "file:///nonexistent.gguf",
  "file:///tmp/a%2Fb.gguf",
  "file:///%00.gguf",
  "~/nonexistent.gguf",
  "C:\\x.gguf",
  "hf.co/",
  "https://huggingface.co/",
  "org/repo:NOTAQUANT",
  "org/repo/../../etc/passwd",
  "a/b/c/d/e",
  "x:y:z@ollama",
  "🦙",
  "ünïcødé:tag@ollama",
  "bare.gguf",
  "missing-model",
  "missing-model@ollama",
  "-"
]

/** A sample of SPECS for the commands whose spec handling is shared with `info` (each run is a process start). */
const SOME_SPECS = ["", "x@", "x@nope", "a\u0007b", "x".repeat(600), "org/../repo", "openai/gpt-4o", "file://host/x.gguf",
  "file:///tmp/a%2Fb.gguf", "./fifo.gguf", "./a-directory.gguf", "bare.gguf", "missing-model", "missing-model@ollama", "🦙"]

const FILES = [
  "./empty.gguf",
  "./a-directory.gguf",
  "./fifo.gguf",
  "./text.gguf",
  "./magic-then-garbage.gguf",
  "./truncated.gguf",
  "./huge.gguf",
  "./huge-header.gguf",
  "./ünïcødé 🦙.gguf",
  "./new\nline.gguf",
  "./loop-a.gguf",
  "./dangling.gguf",
  "./nonexistent.gguf",
  "/dev/null",
  "/dev/zero",
  "/proc/self/mem",
  "/",
  "file:///dev/zero"
]

describe("a model path that is not a regular file, or claims an absurd header", () => {
  // Opening a FIFO blocks until a writer appears: this hung forever (and ignored Ctrl-C) before.
  it("is refused at once with the path and its type, for run and info", async () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      [["run", "-m", "./fifo.gguf", "hi"], `${join(dir, "fifo.gguf")} is not a valid GGUF model: it is a FIFO (named pipe), not a regular file`],
      [["model", "info", "./fifo.gguf"], "it is a FIFO (named pipe), not a regular file"],
      [["run", "-m", "./a-directory.gguf", "hi"], "it is a directory, not a regular file"],
      [["model", "info", "file:///dev/zero"], "/dev/zero is not a valid GGUF model: it is a character device, not a regular file"],
      [["model", "info", "./huge-header.gguf"], "header larger than 67108864 bytes"]
    ]
    const results = await pool(cases.map(([args]) => args), 2, (args) => run(args))
    cases.forEach(([args, message], i) => {
      const result = results[i]!
      expect(result.hung, args.join(" ")).toBe(false)
      expect(result.code, result.stderr).toBe(1)
      expect(result.stderr).toContain(message)
    })
  }, 120_000)
})

describe("bad input never ends in 'this is a bug in llmspell'", () => {
  it("run -m <bad spec or bad file>", async () => {
    const cases = [...SPECS, ...FILES].map((spec) => ["run", "-m", spec, "hi"])
    await expectAllClean(cases)
  }, 240_000)

  it("model info / pull / remove / verify <bad spec or bad file>", async () => {
    const cases = [
      // `model info openai/gpt-4o` without a key answers what the presets' table knows (cloudCapabilities.test.ts)
      ...[...SPECS, ...FILES].filter((spec) => spec !== "openai/gpt-4o").map((spec) => ["model", "info", spec]),
      ...[...SOME_SPECS, "hf.co/", "https://huggingface.co/", "org/repo:NOTAQUANT", "a/b/c/d/e", "org/repo/../../etc/passwd"]
        .map((spec) => ["model", "pull", spec]),
      ...SOME_SPECS.map((spec) => ["model", "remove", spec, "--yes"]),
      ...SOME_SPECS.filter((s) => s !== "").map((spec) => ["model", "verify", spec])
    ]
    await expectAllClean(cases)
  }, 400_000)

  it("numeric options out of range: a typed InvalidRequest naming the option, exit 2", async () => {
    const cases = [
      ["run", "-m", "present@ollama", "--max-tokens", "0", "hi"],
      ["run", "-m", "present@ollama", "--max-tokens", "-5", "hi"],
      ["run", "-m", "present@ollama", "--temperature", "-1", "hi"],
      ["run", "-m", "present@ollama", "--temperature", "NaN", "hi"],
      ["run", "-m", "present@ollama", "--temperature", "Infinity", "hi"],
      ["run", "-m", "present@ollama"],
      ["run", "-m", "present@ollama", "   "],
      ["--models-dir", "", "model", "list"],
      ["--config", "", "model", "list"],
      ["model", "pull", "org/repo", "--quantization", "NOPE"],
      ["model", "pull", "present@ollama", "--quantization", "Q8_0"]
    ]
    await expectAllClean(cases)
  }, 240_000)

  // @effect/cli rejects these while parsing; the CLI renders its message like every other error.
  it("options @effect/cli itself rejects: exit 2 with error: and hint: lines, never a crash", async () => {
    const cases = [
      ["run", "-m", "present@ollama", "--max-tokens", "1.5", "hi"],
      ["run", "-m", "present@ollama", "--max-tokens", "abc", "hi"],
      ["run", "-m", "present@ollama", "--temperature", "abc", "hi"],
      ["run", "-m", "present@ollama", "--seed", "1.5", "hi"],
      ["run", "-m", "present@ollama", "--seed", "abc", "hi"],
      ["run", "-m", "present@ollama", "--seed", "1e400", "hi"],
      ["run", "-m", "present@ollama", "--max-tokens", "99999999999999999999999", "hi"],
      ["run", "-m", "--", "hi"],
      ["model", "info", "--"],
      ["model", "pull", "--"],
      ["run", "-m", "present@ollama", "--nope", "hi"],
      ["run", "-m"],
      ["run", "hi"],
      ["model", "bogus"]
    ]
    const results = await pool(cases, 3, (args) => run(args))
    const wrong = cases.flatMap((args, i) => {
      const r = results[i]!
      return r.code === 2 && /^error: \S/m.test(r.stderr) && /^hint: \S/m.test(r.stderr) && !/ a integer|bug in llmspell/.test(r.stderr + r.stdout)
        ? []
        : [`${args.join(" ")} → ${r.code}${r.hung ? " (hung)" : ""}\n${r.stderr}${r.stdout}`]
    })
    expect(wrong).toEqual([])
  }, 240_000)
})
