/**
 * What `llmspell model install-ollama` should do, decided from facts gathered elsewhere (OS, CPU
 * architecture, `ollama --version`, the default instance's status) and the flags. Pure: the
 * command gathers the facts and carries out the action; everything it prints is decided here.
 * Install methods are Ollama's official ones: the Linux install script, the macOS and Windows
 * downloads (for those `--yes` opens the download page: their installers are interactive).
 */
import * as Schema from "effect/Schema"

/** The official Linux install script. */
export const LINUX_INSTALL_SCRIPT = "https://ollama.com/install.sh"
/** The official download pages. */
export const DOWNLOAD_PAGES = {
  darwin: "https://ollama.com/download/mac",
  win32: "https://ollama.com/download/windows",
  other: "https://ollama.com/download"
} as const

/** What was found on this machine. */
export interface InstallFacts {
  readonly platform: string
  readonly arch: string
  /** The version `ollama --version` printed; undefined when the command is not on PATH. */
  readonly installedVersion: string | undefined
  /** The default Ollama instance. */
  readonly server: { readonly url: string; readonly available: boolean; readonly version?: string | undefined }
}

/** The command's flags. */
export interface InstallFlags {
  readonly dryRun: boolean
  readonly yes: boolean
}

/** Something to run: argv, without a shell unless argv says so. */
export interface InstallAction {
  readonly description: string
  readonly argv: readonly [string, ...Array<string>]
  /** A URL that must be reachable first (no network → a clear error, nothing run). */
  readonly requires: string
}

/** The decision. */
export interface InstallPlan {
  readonly state: "running" | "installed" | "server-only" | "not-installed"
  /** Lines for stdout. */
  readonly lines: ReadonlyArray<string>
  /** The action to carry out now; only with `--yes` and without `--dry-run`. */
  readonly run: InstallAction | undefined
}

/** The version in `ollama --version` output ("ollama version is 0.12.6", or "client version is …" when no server runs). */
export const parseOllamaVersion = (output: string): string | undefined =>
  /(?:client )?version is\s+v?([0-9][^\s]*)/i.exec(output)?.[1] ?? /\bv?(\d+\.\d+\.\d+[^\s]*)/.exec(output)?.[1]

const PLATFORM_NAMES: Record<string, string> = { linux: "Linux", darwin: "macOS", win32: "Windows" }

/** The official install method for a platform, or undefined where Ollama has none. */
export const installMethod = (platform: string, arch: string): InstallAction | undefined => {
  if (platform === "linux") {
    if (arch !== "x64" && arch !== "arm64") return undefined
    return {
      description: `download and run the official install script: curl -fsSL ${LINUX_INSTALL_SCRIPT} | sh`,
      argv: ["sh", "-c", `curl -fsSL ${LINUX_INSTALL_SCRIPT} | sh`],
      requires: LINUX_INSTALL_SCRIPT
    }
  }
  if (platform === "darwin") {
    return {
      description: `open the official download page ${DOWNLOAD_PAGES.darwin}, then open Ollama.dmg and move Ollama to Applications`,
      argv: ["open", DOWNLOAD_PAGES.darwin],
      requires: DOWNLOAD_PAGES.darwin
    }
  }
  if (platform === "win32") {
    return {
      description: `open the official download page ${DOWNLOAD_PAGES.win32}, then run OllamaSetup.exe`,
      argv: ["cmd", "/c", "start", "", DOWNLOAD_PAGES.win32],
      requires: DOWNLOAD_PAGES.win32
    }
  }
  return undefined
}

/** Decides what to say and do. */
export const planInstall = (facts: InstallFacts, flags: InstallFlags): InstallPlan => {
  const where = `${PLATFORM_NAMES[facts.platform] ?? facts.platform} ${facts.arch}`
  const { server } = facts
  if (facts.installedVersion !== undefined && server.available) {
    return {
      state: "running",
      lines: [
        `Ollama ${facts.installedVersion} is installed and running at ${server.url}` +
        (server.version !== undefined && server.version !== facts.installedVersion ? ` (server version ${server.version})` : ""),
        "nothing to do"
      ],
      run: undefined
    }
  }
  if (facts.installedVersion !== undefined) {
    return {
      state: "installed",
      lines: [
        `Ollama ${facts.installedVersion} is installed, but no server answers at ${server.url}`,
        "start it with `ollama serve` (or your service manager), or point OLLAMA_HOST at a running server"
      ],
      run: undefined
    }
  }
  if (server.available) {
    return {
      state: "server-only",
      lines: [
        `an Ollama server${server.version !== undefined ? ` ${server.version}` : ""} is running at ${server.url} ` +
        "(the `ollama` command is not on PATH here, which llmspell does not need)",
        "nothing to do"
      ],
      run: undefined
    }
  }
  const method = installMethod(facts.platform, facts.arch)
  const header = `Ollama is not installed (no \`ollama\` on PATH) and no server answers at ${server.url}`
  if (method === undefined) {
    return {
      state: "not-installed",
      lines: [
        header,
        `Ollama has no official installer for ${where}; see ${DOWNLOAD_PAGES.other} and https://github.com/ollama/ollama`
      ],
      run: undefined
    }
  }
  const steps = [`1. ${method.description}`, "2. start the server: `ollama serve` (the installer may already run it as a service)", "3. check: `llmspell model status --backend ollama`"]
  if (flags.dryRun) {
    return { state: "not-installed", lines: [header, `steps for ${where}:`, ...steps, "dry run: nothing was changed"], run: undefined }
  }
  if (!flags.yes) {
    return {
      state: "not-installed",
      lines: [header, `to install on ${where}:`, ...steps, "run `llmspell model install-ollama --yes` to do step 1 now"],
      run: undefined
    }
  }
  return { state: "not-installed", lines: [header, `installing on ${where}: ${method.description}`], run: method }
}

/** `model install-ollama --json`: what was found, the plan's lines, and what was run. */
export const InstallOllamaReport = Schema.Struct({
  state: Schema.Literal("running", "installed", "server-only", "not-installed"),
  installedVersion: Schema.NullOr(Schema.String),
  server: Schema.Struct({ url: Schema.String, available: Schema.Boolean, version: Schema.optional(Schema.String) }),
  lines: Schema.Array(Schema.String),
  /** The official installer's command line, when one was planned (run only with `--yes`). */
  action: Schema.NullOr(Schema.Struct({ description: Schema.String, argv: Schema.Array(Schema.String) })),
  ran: Schema.Boolean
})
/** `model install-ollama --json`. */
export type InstallOllamaReport = typeof InstallOllamaReport.Type
