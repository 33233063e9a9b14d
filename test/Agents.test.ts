/**
 * The agents' setups (src/domain/Agents.ts) for any spec and URL: Codex's `-c` values parse as the
 * TOML Codex reads (a real TOML parser, specs with quotes, backslashes, spaces and non-ASCII),
 * opencode's config is JSON naming the key's variable, secrets are only where they must be and
 * redacted when shown, and the context check's numbers and fixes.
 */
import { parse } from "smol-toml"
import { describe, expect, it } from "vitest"
import { AGENT_NAMES, AGENTS, agentSetup, contextProblem, shownEnv } from "../src/domain/Agents.js"

const KEY = "k3y-that-must-not-leak-0123456789"
const SPECS = ["qwen2.5:0.5b@ollama", "openai/gpt-4o-mini", "./my \"odd\" model\\x.gguf@gguf", "modèle✓.gguf@gguf"]

/** Codex's `-c key=value` pairs, each parsed as the TOML line `key = value`. */
const codexConfig = (args: ReadonlyArray<string>) => {
  const pairs = args.flatMap((a, i) => (args[i - 1] === "-c" ? [a] : []))
  return Object.assign({}, ...pairs.map((p) => {
    const eq = p.indexOf("=")
    return parse(`${p.slice(0, eq).split(".").map((k) => JSON.stringify(k)).join(".")} = ${p.slice(eq + 1)}`)
  })) as Record<string, unknown>
}

describe("agentSetup", () => {
  it.each(SPECS)("codex: every -c value is TOML that says what we mean (%s)", (spec) => {
    const setup = agentSetup("codex", { url: "http://127.0.0.1:4567", spec, contextSize: 32768, apiKey: KEY }, "/tmp/x")
    const config = codexConfig(setup.args)
    expect(config).toEqual({
      model_providers: { llmspell: { name: "llmspell", base_url: "http://127.0.0.1:4567/v1", wire_api: "responses", env_key: "LLMSPELL_API_KEY" } },
      model_provider: "llmspell",
      model: spec,
      web_search: "disabled",
      model_context_window: 32768
    })
    expect(setup.env).toEqual({ LLMSPELL_API_KEY: KEY })
  })

  it.each(SPECS)("opencode: a JSON config naming the key's variable, the spec as the model (%s)", (spec) => {
    const setup = agentSetup("opencode", { url: "http://[::1]:4567", spec, apiKey: KEY }, "/tmp/run")
    const config = JSON.parse(setup.files["opencode.json"]!) as { provider: Record<string, { options: Record<string, string>; models: Record<string, unknown> }>; model: string }
    expect(config.provider["llmspell"]!.options).toEqual({ baseURL: "http://[::1]:4567/v1", apiKey: "{env:LLMSPELL_API_KEY}" })
    expect(Object.keys(config.provider["llmspell"]!.models)).toEqual([spec])
    expect(config.model).toBe(`llmspell/${spec}`)
    expect(setup.env["OPENCODE_CONFIG"]).toBe("/tmp/run/opencode.json")
    expect(JSON.parse(setup.env["OPENCODE_CONFIG_CONTENT"]!)).toEqual({ model: `llmspell/${spec}`, small_model: `llmspell/${spec}` })
  })

  it("the key is only in the variables marked secret, never in arguments or files, and shown redacted", () => {
    for (const agent of AGENT_NAMES) {
      const setup = agentSetup(agent, { url: "http://127.0.0.1:1", spec: "m@gguf", apiKey: KEY }, "/tmp/d")
      expect(setup.args.join(" "), agent).not.toContain(KEY)
      expect(Object.values(setup.files).join(""), agent).not.toContain(KEY)
      const holding = Object.entries(setup.env).filter(([, v]) => v.includes(KEY)).map(([k]) => k)
      expect(holding.length, agent).toBeGreaterThan(0)
      expect([...setup.secret].sort(), agent).toEqual(holding.sort())
      expect(JSON.stringify(shownEnv(setup)), agent).not.toContain(KEY)
    }
  })

  it("claude: the root URL (it appends /v1/messages), the token, every model variable, and the user's own key removed", () => {
    const setup = agentSetup("claude", { url: "http://127.0.0.1:1", spec: "m@gguf", apiKey: KEY }, "/tmp/d")
    expect(setup.env["ANTHROPIC_BASE_URL"]).toBe("http://127.0.0.1:1")
    expect(setup.env["ANTHROPIC_AUTH_TOKEN"]).toBe(KEY)
    expect(Object.entries(setup.env).filter(([k]) => k.endsWith("_MODEL")).map(([, v]) => v)).toEqual(Array(6).fill("m@gguf"))
    expect(setup.unset).toEqual(["ANTHROPIC_API_KEY"])
  })
})

describe("contextProblem", () => {
  const claude = AGENTS.claude
  it("none when the context holds the agent's prompt, or is not known", () => {
    expect(contextProblem(claude, "m", claude.minContext, 131072)).toBeUndefined()
    expect(contextProblem(claude, "m", undefined, undefined)).toBeUndefined()
  })
  it("a context set too small: the numbers, and a --context the model was trained for", () => {
    const p = contextProblem(claude, "m@gguf", 4096, 131072)!
    expect(p.reason).toContain("4096")
    expect(p.reason).toContain(String(claude.minContext))
    expect(p.fix).toBe("llmspell launch claude -m m@gguf --context 32768")
    // never more than it was trained for
    expect(contextProblem(claude, "m@gguf", 4096, 28000)!.fix).toContain("--context 28000")
    // a running server's model: --context needs a server of the run's own
    expect(contextProblem(claude, "m@gguf", 4096, 131072, "running server")!.fix).toContain("--local --context 32768")
    // Ollama sizes it itself
    expect(contextProblem(claude, "m@ollama", 4096, 131072, "ollama")!.fix).toContain("OLLAMA_CONTEXT_LENGTH=32768")
  })
  it("a model trained for less than the agent needs: another model, not --context", () => {
    const p = contextProblem(AGENTS.codex, "m@gguf", 2048, 8192)!
    expect(p.reason).toContain("trained for a context of 8192")
    expect(p.fix).not.toContain("--context")
  })
})
