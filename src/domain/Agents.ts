/**
 * The coding agents `llmspell launch` runs, and how each is pointed at a `llmspell serve` through
 * its own documented settings — environment variables and command-line config, never the user's
 * files — with the llmspell model spec given as the agent's model directly (no alias needed).
 *
 * - Claude Code (`claude`, npm `@anthropic-ai/claude-code`) speaks Anthropic's Messages API:
 *   `ANTHROPIC_BASE_URL` (the server's root: it appends `/v1/messages`), `ANTHROPIC_AUTH_TOKEN`
 *   (sent as `Authorization: Bearer`), every model variable it reads (`ANTHROPIC_MODEL`, the
 *   opus/sonnet/haiku defaults, the small fast model, the subagent model) set to the spec, and
 *   non-essential traffic (telemetry, update checks) off. A user's `ANTHROPIC_API_KEY` is removed
 *   from the agent's environment: it would take precedence and be sent to the local server.
 * - Codex (`codex`, npm `@openai/codex`) speaks OpenAI's Responses API: a provider given with `-c`
 *   overrides (TOML values) — `base_url` ending in `/v1` (it appends `/responses`), `wire_api =
 *   "responses"`, and `env_key` naming the variable that holds the key, so the key travels in the
 *   environment, not on the command line — selected by `model_provider`, the spec as `model`, and
 *   the context window the model runs with (`model_context_window`, which Codex cannot know for a
 *   model outside its catalogue), and `web_search = "disabled"` (Codex otherwise sends OpenAI's
 *   hosted web search tool, which no local server runs).
 * - opencode (`opencode`, npm `opencode-ai`) speaks chat completions through its OpenAI-compatible
 *   provider (`@ai-sdk/openai-compatible`): a config file of its own in a private temporary
 *   directory (`OPENCODE_CONFIG`), which names the key as `{env:LLMSPELL_API_KEY}` rather than
 *   holding it, and the model chosen in `OPENCODE_CONFIG_CONTENT` (opencode's highest-precedence
 *   inline config, so a project's `opencode.json` does not pick another model).
 *
 * Pure: the command (`src/cli/commands/launch.ts`) finds the server, the binary and the context.
 */

/** The agents `llmspell launch` knows. */
export const AGENT_NAMES = ["claude", "codex", "opencode"] as const
/** An agent `llmspell launch` knows. */
export type AgentName = typeof AGENT_NAMES[number]

/** What llmspell knows of one agent. */
export interface Agent {
  readonly name: AgentName
  /** What people call it. */
  readonly title: string
  /** Its executable, looked up on PATH. */
  readonly binary: string
  /** The npm package that installs it. */
  readonly npmPackage: string
  /**
   * The smallest context, in tokens, the agent's first request fits in with room for an answer:
   * its own system prompt and tool definitions before any conversation (Claude Code 2.1 sends ~24
   * tools and a ~6k-character system prompt, 10–20k tokens; Codex and opencode ~10k), plus 4k for
   * the answer. A working session wants far more (Ollama advises 64k for coding agents).
   */
  readonly minContext: number
}

/** The agents, by name. */
export const AGENTS: Readonly<Record<AgentName, Agent>> = {
  claude: { name: "claude", title: "Claude Code", binary: "claude", npmPackage: "@anthropic-ai/claude-code", minContext: 24576 },
  codex: { name: "codex", title: "Codex", binary: "codex", npmPackage: "@openai/codex", minContext: 16384 },
  opencode: { name: "opencode", title: "opencode", binary: "opencode", npmPackage: "opencode-ai", minContext: 16384 }
}

/** The variable that carries serve's key to Codex and opencode (the one llmspell's CLI reads too). */
export const KEY_VARIABLE = "LLMSPELL_API_KEY"
/** The provider id the agents' configs use for the server. */
export const PROVIDER_ID = "llmspell"

/** Where the agent goes and with what. */
export interface AgentTarget {
  /** The server's root URL (`http://127.0.0.1:11435`), no trailing slash. */
  readonly url: string
  /** The llmspell model spec the agent asks for. */
  readonly spec: string
  /** The context the model runs with, when known (given to agents that take it). */
  readonly contextSize?: number | undefined
  /** The server's key; agents need one even when the server takes none. */
  readonly apiKey: string
}

/** How to run the agent: variables to set and to remove, arguments before the user's, and files to write. */
export interface AgentSetup {
  readonly env: Readonly<Record<string, string>>
  /** Variables removed from the agent's environment (they would override ours or leak a key). */
  readonly unset: ReadonlyArray<string>
  readonly args: ReadonlyArray<string>
  /** Files written to the run's private temporary directory, by name (none holds a secret). */
  readonly files: Readonly<Record<string, string>>
  /** The variables whose value is a secret (redacted when shown). */
  readonly secret: ReadonlyArray<string>
}

/** A TOML basic string: JSON's string escapes are TOML's (`\"`, `\\`, `\n`, `\uXXXX`). */
const toml = (s: string) => JSON.stringify(s)

/** The setup of an agent for a target; `dir` is where its files will be (their paths go in the env). */
export const agentSetup = (agent: AgentName, target: AgentTarget, dir: string): AgentSetup => {
  switch (agent) {
    case "claude":
      return {
        env: {
          ANTHROPIC_BASE_URL: target.url,
          ANTHROPIC_AUTH_TOKEN: target.apiKey,
          ANTHROPIC_MODEL: target.spec,
          ANTHROPIC_DEFAULT_OPUS_MODEL: target.spec,
          ANTHROPIC_DEFAULT_SONNET_MODEL: target.spec,
          ANTHROPIC_DEFAULT_HAIKU_MODEL: target.spec,
          ANTHROPIC_SMALL_FAST_MODEL: target.spec,
          CLAUDE_CODE_SUBAGENT_MODEL: target.spec,
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
          DISABLE_TELEMETRY: "1",
          DISABLE_AUTOUPDATER: "1"
        },
        unset: ["ANTHROPIC_API_KEY"],
        args: [],
        files: {},
        secret: ["ANTHROPIC_AUTH_TOKEN"]
      }
    case "codex": {
      const provider = `{ name = ${toml("llmspell")}, base_url = ${toml(`${target.url}/v1`)}, wire_api = "responses", env_key = ${toml(KEY_VARIABLE)} }`
      return {
        env: { [KEY_VARIABLE]: target.apiKey },
        unset: [],
        args: [
          "-c",
          `model_providers.${PROVIDER_ID}=${provider}`,
          "-c",
          `model_provider=${toml(PROVIDER_ID)}`,
          "-c",
          `model=${toml(target.spec)}`,
          // Codex adds OpenAI's hosted web search (a nameless `web_search` tool) by default; serve
          // runs function tools only and refuses it
          "-c",
          `web_search=${toml("disabled")}`,
          ...(target.contextSize !== undefined ? ["-c", `model_context_window=${target.contextSize}`] : [])
        ],
        files: {},
        secret: [KEY_VARIABLE]
      }
    }
    case "opencode": {
      const model = {
        name: target.spec,
        tool_call: true,
        ...(target.contextSize !== undefined ? { limit: { context: target.contextSize, output: Math.min(8192, Math.floor(target.contextSize / 4)) } } : {})
      }
      const config = {
        $schema: "https://opencode.ai/config.json",
        provider: {
          [PROVIDER_ID]: {
            npm: "@ai-sdk/openai-compatible",
            name: "llmspell",
            options: { baseURL: `${target.url}/v1`, apiKey: `{env:${KEY_VARIABLE}}` },
            models: { [target.spec]: model }
          }
        },
        model: `${PROVIDER_ID}/${target.spec}`,
        small_model: `${PROVIDER_ID}/${target.spec}`
      }
      return {
        env: {
          [KEY_VARIABLE]: target.apiKey,
          OPENCODE_CONFIG: `${dir}/opencode.json`,
          OPENCODE_CONFIG_CONTENT: JSON.stringify({ model: config.model, small_model: config.small_model }),
          OPENCODE_DISABLE_AUTOUPDATE: "1"
        },
        unset: [],
        args: [],
        files: { "opencode.json": `${JSON.stringify(config, null, 2)}\n` },
        secret: [KEY_VARIABLE]
      }
    }
  }
}

/** The environment shown for `--dry-run`: every secret as `<redacted>`. */
export const shownEnv = (setup: AgentSetup): Record<string, string> =>
  Object.fromEntries(Object.entries(setup.env).map(([k, v]) => [k, setup.secret.includes(k) ? "<redacted>" : v]))

/**
 * The context a model should run with for an agent, or why it falls short: `runs` is the context it
 * will run with (undefined: unknown, e.g. a cloud model, not checked), `trained` its trained context,
 * `where` who sizes it: a server launch starts (`--context`), a server already running (its
 * `context_size`, or `--local --context`), or Ollama (`OLLAMA_CONTEXT_LENGTH`).
 */
export const contextProblem = (
  agent: Agent,
  spec: string,
  runs: number | undefined,
  trained: number | undefined,
  where: "launch" | "running server" | "ollama" = "launch"
): { readonly reason: string; readonly fix: string } | undefined => {
  if (runs === undefined || runs >= agent.minContext) return undefined
  const needs = `${agent.title}'s prompt needs a context of at least ${agent.minContext} tokens (its instructions and tool definitions alone are ${agent.minContext - 4096} or so, plus room to answer)`
  if (trained !== undefined && trained < agent.minContext) {
    return {
      reason: `${spec} was trained for a context of ${trained} tokens; ${needs}`,
      fix: `choose a model trained for ${agent.minContext} tokens or more (\`llmspell model info <spec>\` shows its context length)`
    }
  }
  const suggested = trained === undefined ? agent.minContext * 2 : Math.min(trained, Math.max(agent.minContext, 32768))
  const launch = `llmspell launch ${agent.name} -m ${spec}`
  return {
    reason: `${spec} ${where === "ollama" ? "is loaded by Ollama" : "would run"} with a context of ${runs} tokens` +
      `${where === "running server" ? " in the running server" : ""}; ${needs}`,
    fix: where === "ollama"
      ? `restart Ollama with a larger context (OLLAMA_CONTEXT_LENGTH=${suggested} ollama serve), or unload the model (ollama stop) to have it loaded again`
      : where === "running server"
      ? `${launch} --local --context ${suggested} (a server for this run), or set context_size = ${suggested} in the running server's config and restart it`
      : `${launch} --context ${suggested}`
  }
}
