/** The pure decision of `llmspell model install-ollama`: what it says and what it would run, per situation. */
import { describe, expect, it } from "vitest"
import { type InstallFacts, parseOllamaVersion, planInstall } from "../src/domain/InstallOllama.js"

const down = { url: "http://127.0.0.1:11434", available: false }
const up = { url: "http://127.0.0.1:11434", available: true, version: "0.12.6" }
const facts = (overrides: Partial<InstallFacts> = {}): InstallFacts => ({
  platform: "linux",
  arch: "x64",
  installedVersion: undefined,
  server: down,
  ...overrides
})
const flags = { dryRun: false, yes: false }

describe("install-ollama decisions", () => {
  it("installed and running: says so with the version, runs nothing, even with --yes", () => {
    const plan = planInstall(facts({ installedVersion: "0.12.6", server: up }), { dryRun: false, yes: true })
    expect(plan.state).toBe("running")
    expect(plan.lines[0]).toBe("Ollama 0.12.6 is installed and running at http://127.0.0.1:11434")
    expect(plan.run).toBeUndefined()
  })

  it("installed but not running: tells how to start it", () => {
    const plan = planInstall(facts({ installedVersion: "0.12.6" }), { dryRun: false, yes: true })
    expect(plan.state).toBe("installed")
    expect(plan.lines.join("\n")).toContain("ollama serve")
    expect(plan.run).toBeUndefined()
  })

  it("a server runs but no ollama command: nothing to install", () => {
    const plan = planInstall(facts({ server: up }), { dryRun: false, yes: true })
    expect(plan.state).toBe("server-only")
    expect(plan.lines[0]).toContain("server 0.12.6 is running")
    expect(plan.run).toBeUndefined()
  })

  it("Linux, not installed: shows the official script; runs it only with --yes; --dry-run changes nothing", () => {
    const shown = planInstall(facts(), flags)
    expect(shown.lines.join("\n")).toContain("curl -fsSL https://ollama.com/install.sh | sh")
    expect(shown.lines.at(-1)).toContain("--yes")
    expect(shown.run).toBeUndefined()

    const dry = planInstall(facts(), { dryRun: true, yes: true })
    expect(dry.lines.at(-1)).toBe("dry run: nothing was changed")
    expect(dry.run).toBeUndefined()

    const run = planInstall(facts({ arch: "arm64" }), { dryRun: false, yes: true })
    expect(run.run?.argv).toEqual(["sh", "-c", "curl -fsSL https://ollama.com/install.sh | sh"])
    expect(run.run?.requires).toBe("https://ollama.com/install.sh")
  })

  it("macOS and Windows: the download pages", () => {
    expect(planInstall(facts({ platform: "darwin", arch: "arm64" }), flags).lines.join("\n")).toContain(
      "https://ollama.com/download/mac"
    )
    const win = planInstall(facts({ platform: "win32" }), { dryRun: false, yes: true })
    expect(win.run?.argv).toEqual(["cmd", "/c", "start", "", "https://ollama.com/download/windows"])
  })

  it("an unsupported platform or architecture: instructions only, even with --yes", () => {
    for (const f of [facts({ platform: "freebsd" }), facts({ arch: "ia32" })]) {
      const plan = planInstall(f, { dryRun: false, yes: true })
      expect(plan.run).toBeUndefined()
      expect(plan.lines.join("\n")).toContain("no official installer")
    }
  })

  it("parses `ollama --version` with and without a server", () => {
    expect(parseOllamaVersion("ollama version is 0.12.6\n")).toBe("0.12.6")
    expect(
      parseOllamaVersion("Warning: could not connect to a running Ollama instance\nWarning: client version is 0.5.1\n")
    ).toBe("0.5.1")
    expect(parseOllamaVersion("nonsense")).toBeUndefined()
  })
})
