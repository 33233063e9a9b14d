/**
 * The CLI's pure renderers: the progress bar line (figures first, fits the terminal), the plain
 * progress mode for dumb or unsized terminals, the loading spinner line, the terminal sanitizer
 * for model output, tables of any size, the global-flag parser, and help found from argv.
 */
import { describe, expect, it } from "vitest"
import { commandTree } from "../src/cli/Cli.js"
import { extractGlobalOptions, GLOBAL_FLAGS } from "../src/cli/GlobalOptions.js"
import { locate, renderHelp, subcommandProblem } from "../src/cli/Help.js"
import * as Cause from "effect/Cause"
import { describeFailure, keyValues, renderError, sanitizeForTerminal, table } from "../src/cli/output.js"
import { BackendError, DownloadFailed } from "../src/domain/Errors.js"
import { describeCause, errorToJson } from "../src/domain/Failure.js"
import { barLine, describe as describeProgress, loadingLine, progressMode, shorten } from "../src/cli/progress.js"
import type { PullProgress } from "../src/domain/Types.js"

const MiB = 1024 * 1024

const downloading = (model: string, completed: number, total: number): PullProgress => ({
  phase: "downloading",
  model,
  backend: "gguf",
  instance: "gguf",
  files: [],
  completedBytes: completed,
  totalBytes: total,
  bytesPerSecond: 12.5 * MiB,
  etaSeconds: 97
})

const LONG = "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Q4_K_M-with-a-very-long-file-name-indeed"

describe("the progress bar line", () => {
  it("on 80 columns: percent, speed and ETA come first and the line fits in 79 characters", () => {
    const line = barLine(downloading(LONG, 120 * MiB, 337 * MiB), 80)
    expect(line.length).toBeLessThanOrEqual(79)
    expect(line.startsWith("35.6% 12.5 MiB/s eta 1m37s [")).toBe(true)
    expect(line).toContain("120 MiB/337 MiB")
    // The name is shortened in the middle, keeping its start and its quantization.
    expect(line).toMatch(/ bartowski.*….*indeed$/)
  })

  it("fits every width from 10 to 200 columns and keeps the figures while they fit", () => {
    for (let columns = 10; columns <= 200; columns++) {
      const line = barLine(downloading(LONG, 120 * MiB, 337 * MiB), columns)
      expect(line.length).toBeLessThanOrEqual(columns - 1)
      if (columns >= 30) expect(line).toContain("35.6% 12.5 MiB/s eta 1m37s")
    }
  })

  it("a narrow terminal drops the bar before the figures; a wide one shows the whole name", () => {
    expect(barLine(downloading(LONG, 1, 2), 50)).not.toContain("[")
    expect(barLine(downloading("tiny:latest", 1, 2), 200)).toMatch(/\] .* tiny:latest$/)
  })

  it("phases other than downloading say the phase, and a message", () => {
    const waiting: PullProgress = { ...downloading("x", 0, 10), phase: "waiting", message: "waiting for another pull" }
    expect(barLine(waiting, 80)).toMatch(/^waiting 0\.0%.*waiting for another pull/)
    const done: PullProgress = { ...downloading("x", 10, 10), phase: "done" }
    expect(barLine(done, 80)).toMatch(/^done 100% \[#+\]/)
  })

  it("plain lines for pipes keep their `model: phase …` form", () => {
    expect(describeProgress({ ...downloading("m", 10, 10), phase: "done" })).toBe("m: done 100% 10 B/10 B")
  })

  it("shorten keeps start and end", () => {
    expect(shorten("abcdefghij", 5)).toBe("ab…ij")
    expect(shorten("abc", 5)).toBe("abc")
    expect(shorten("abc", 1)).toBe("…")
    expect(shorten("abc", 0)).toBe("")
  })
})

describe("which progress a terminal gets", () => {
  const tty = { json: false, stderrIsTTY: true, dumbTerminal: false, columns: 80 }
  it("a bar on a sized TTY; plain lines on TERM=dumb, an unknown width, or a pipe; NDJSON with --json", () => {
    expect(progressMode(tty)).toBe("bar")
    expect(progressMode({ ...tty, dumbTerminal: true })).toBe("lines")
    expect(progressMode({ ...tty, columns: undefined })).toBe("lines")
    expect(progressMode({ ...tty, columns: 0 })).toBe("lines")
    expect(progressMode({ ...tty, stderrIsTTY: false })).toBe("lines")
    expect(progressMode({ ...tty, json: true })).toBe("json")
  })
})

describe("the loading spinner line", () => {
  it("names the model and its size, and fits the terminal", () => {
    expect(loadingLine("qwen2.5:0.5b", 337 * MiB, 0, 80)).toBe("⠋ loading qwen2.5:0.5b (337 MiB)…")
    expect(loadingLine("x", undefined, 1, 80)).toBe("⠙ loading x…")
    for (let columns = 5; columns <= 120; columns++) {
      expect(loadingLine(LONG, 337 * MiB, columns, columns).length).toBeLessThanOrEqual(columns - 1)
    }
  })
})

describe("model output on a terminal", () => {
  it("loses escape sequences and control characters, keeps newline, tab and text", () => {
    const hostile = "a\x1b[31mred\x1b[0m\x1b]0;pwned\x07\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\\x1b[2J\x1b[H" +
      "\ttab\nline\r\x08\x07\x9b31mc1 é 日本 ✓"
    expect(sanitizeForTerminal(hostile)).toBe("aredlink\ttab\nlinec1 é 日本 ✓")
    expect(sanitizeForTerminal("plain text\n")).toBe("plain text\n")
  })
})

describe("tables and key/value blocks of any size", () => {
  it("150,000 rows render without overflowing the stack", () => {
    const rows = Array.from({ length: 150_000 }, (_, i) => [`model-${i}`, i])
    const text = table(["NAME", "N"], rows)
    expect(text.split("\n")).toHaveLength(150_001)
    expect(text.split("\n")[0]).toBe("NAME          N")
    const pairs = Array.from({ length: 150_000 }, (_, i) => [`k${i}`, "v"] as const)
    expect(keyValues(pairs).split("\n")).toHaveLength(150_000)
  })
})

describe("global flags", () => {
  it("are taken from anywhere; --json goes back to the command, before a `--`", () => {
    const parsed = extractGlobalOptions(["--json", "model", "list", "--hub-endpoint=http://h", "--offline", "--", "--x"])
    expect(parsed.options).toMatchObject({ json: true, flags: { hubEndpoint: "http://h", offline: true } })
    expect(parsed.rest).toEqual(["model", "list", "--json", "--", "--x"])
  })

  it("argv of 200,000 arguments after `--` is handled (no spread into a call)", () => {
    const many = Array.from({ length: 200_000 }, () => "x")
    expect(extractGlobalOptions(["run", "--", ...many]).rest).toHaveLength(200_002)
  })

  it("help lists each of them, from the same table the parser reads", () => {
    const help = renderHelp([commandTree], { color: false })
    for (const flag of GLOBAL_FLAGS) expect(help).toContain(flag.name)
    expect(help).toContain("--hub-endpoint <url>")
  })
})

describe("help and subcommands", () => {
  const helpFor = (args: Array<string>) => {
    const located = locate(commandTree, args)
    if (located._tag !== "Help") throw new Error(`expected help, got ${located._tag}`)
    return renderHelp(located.path, { color: false })
  }

  it("is plain, without @effect/cli's boilerplate, with full usage lines", () => {
    const help = helpFor(["model", "status", "--help"])
    expect(help).toContain("  llmspell model status [--json] [--backend all|ollama|gguf|candle|cloud] [--check]")
    expect(help).not.toMatch(/\x1b/)
    expect(help).not.toContain("A true or false value")
    expect(help).not.toContain("This setting is optional")
    expect(help).not.toContain("$ ")
    expect(helpFor(["run", "-h"])).toContain("llmspell run -m|--model <model>")
  })

  it("colour only when asked: bold headings", () => {
    expect(renderHelp([commandTree], { color: true })).toContain("\x1b[1mUsage:\x1b[0m")
  })

  it("the root help lists every command by its full path", () => {
    const help = helpFor(["--help"])
    for (const c of ["model status", "model list", "model pull", "model install-ollama", "run", "config show", "config path"]) {
      expect(help).toContain(`  ${c} `)
    }
  })

  it("an unknown or missing subcommand names the commands there are, and the closest", () => {
    const unknown = locate(commandTree, ["model", "bogus"])
    expect(unknown._tag).toBe("UnknownSubcommand")
    if (unknown._tag !== "UnknownSubcommand") return
    expect(subcommandProblem(unknown)).toEqual({
      message: "`llmspell model` has no command 'bogus'; its commands are status, list, pull, import, available, info, remove, verify, install-ollama",
      hint: "see `llmspell model --help`"
    })
    const typo = locate(commandTree, ["model", "lst"])
    if (typo._tag !== "UnknownSubcommand") throw new Error(typo._tag)
    expect(subcommandProblem(typo).hint).toBe("did you mean `llmspell model list`?")
    expect(locate(commandTree, ["config"])._tag).toBe("MissingSubcommand")
    expect(locate(commandTree, ["run", "-m", "x", "--", "--help"])._tag).toBe("Run")
  })
})

describe("URLs in what the CLI prints are redacted wherever they come from (issue 19 item 21)", () => {
  // A library's message can carry a URL llmspell never built: the hub's CDN redirect with its signature.
  const signed = "https://cdn.example/repos/x/abc?X-Amz-Signature=SIGSECRET&X-Amz-Credential=CREDSECRET&Expires=1"
  const errors = [
    new DownloadFailed({ reason: `the CDN answered HTTP 403 for ${signed}`, suggestion: `retry ${signed}` }),
    new BackendError({ backend: "cloud", operation: "chat", reason: `proxy said: see http://u:PWSECRET@h/?token=TOKSECRET.` })
  ]
  it("error: and hint: lines, --json envelopes, --verbose details", () => {
    for (const error of errors) {
      for (const options of [{ json: false, verbose: false }, { json: true, verbose: false }, { json: false, verbose: true }]) {
        const printed = describeFailure(Cause.fail(error), options)
        const text = `${printed.stdout ?? ""}${printed.stderr ?? ""}`
        expect(text).toContain("<redacted>")
        expect(text).not.toMatch(/SIGSECRET|CREDSECRET|PWSECRET|TOKSECRET/)
      }
      const rendered = renderError(errorToJson(error), { json: false })
      expect(rendered.stderr).not.toMatch(/SECRET/)
    }
  })

  it("the shared error shape every front end uses (the Promise facade, status reports, servers)", () => {
    for (const error of errors) {
      expect(JSON.stringify(errorToJson(error))).not.toMatch(/SECRET/)
      expect(JSON.stringify(describeCause(Cause.fail(error)).error)).not.toMatch(/SECRET/)
      expect(JSON.stringify(describeCause(Cause.die(new Error(`boom at ${signed}`))).error)).not.toMatch(/SECRET/)
    }
  })
})
