/**
 * node-llama-cpp's runtime for the in-process loader (`llama.ts`): the library, imported with
 * `import()` on first use only (so `llmspell --help` never loads it); one `Llama` per device
 * setting, chosen as `device` says (auto: CUDA, Metal, Vulkan, then the CPU); the recent
 * llama.cpp log lines ("Failed to load model" carries its real reason only there); and
 * `toBackendError`, the one mapping from what node-llama-cpp throws to a typed `BackendError`.
 */
import * as Effect from "effect/Effect"
import type { Llama, LlamaGpuType } from "node-llama-cpp"
import { BackendError, DeviceUnavailable } from "../../domain/Errors.js"
import type { Device, LoadOptions, RuntimeInfo } from "../../services/LlamaLoader.js"

/** node-llama-cpp's module. */
export type NodeLlamaCpp = typeof import("node-llama-cpp")

/** node-llama-cpp, imported on first use. */
export const importLibrary = (): Promise<NodeLlamaCpp> => import("node-llama-cpp")

/** Recent llama.cpp warnings and errors: "Failed to load model" carries its real reason only here. */
export class LogBuffer {
  private readonly lines: Array<string> = []
  private count = 0
  constructor(private readonly onLine?: (line: string) => void) {}
  remember(message: string) {
    const line = message.trim()
    if (line.length === 0) return
    this.onLine?.(line)
    this.lines.push(line)
    this.count++
    if (this.lines.length > 20) this.lines.shift()
  }
  /** A position to read new lines from. */
  get mark() {
    return this.count
  }
  since(mark: number) {
    return this.lines.slice(Math.max(0, this.lines.length - (this.count - mark)))
  }
}

export const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** Maps anything node-llama-cpp throws to a BackendError that says what to do. */
export const toBackendError = (operation: string, instance?: string, logs: ReadonlyArray<string> = []) => (e: unknown) => {
  const name = e instanceof Error ? e.name : ""
  const detail = logs.length > 0 ? ` (llama.cpp: ${logs.slice(-3).join("; ")})` : ""
  const suggestion = name === "InsufficientMemoryError"
    ? "lower context_size, gpu_layers or parallel in the config, or unload other models"
    : name === "DisposedError"
    ? "the model was unloaded while in use; run the request again"
    : name === "NoBinaryFoundError" || /NoBinaryFound/.test(describe(e))
    ? "node-llama-cpp has no llama.cpp build for this machine: install its prebuilt package " +
      "(`npm install @node-llama-cpp/linux-x64` on Linux x64), or build one with `npx --no node-llama-cpp source download`; " +
      "`llmspell model status` shows the GGUF backend's state"
    : undefined
  return new BackendError({
    backend: "gguf",
    ...(instance !== undefined ? { instance } : {}),
    operation,
    reason: `${describe(e)}${detail}`,
    ...(suggestion !== undefined ? { suggestion } : {}),
    cause: e
  })
}

// ---------------------------------------------------------------------------------------------
// The runtime: one Llama per device setting, created on first use
// ---------------------------------------------------------------------------------------------

/** A Llama and what `model status` says about it. */
export interface Runtime {
  readonly llama: Llama
  readonly info: RuntimeInfo
}

const GPU_ORDER: ReadonlyArray<Exclude<Device, "cpu">> = ["cuda", "metal", "vulkan"]
const NAMES: Record<Device, string> = { cuda: "CUDA", metal: "Metal", vulkan: "Vulkan", cpu: "CPU" }

const describeRuntime = async (llama: Llama, device: Device, reason: string, warnings: Array<string>): Promise<RuntimeInfo> => {
  const lib = await importLibrary()
  const gpu = device !== "cpu"
  const vram = gpu ? await llama.getVramState().catch(() => undefined) : undefined
  return {
    device,
    reason,
    binary: llama.buildType === "prebuilt" ? "prebuilt" : "local build",
    libraryVersion: await lib.getModuleVersion().catch(() => undefined),
    llamaCppRelease: `${llama.llamaCppRelease.repo} ${llama.llamaCppRelease.release}`,
    gpuNames: gpu ? await llama.getGpuDeviceNames().catch(() => []) : [],
    vramTotalBytes: vram?.total,
    vramFreeBytes: vram?.free,
    warnings
  }
}

/**
 * The runtimes of one loader, keyed by the device setting ("auto" and the device it resolves to
 * end up sharing one Llama); llama.cpp's warnings and errors go to `logs`.
 */
export const makeRuntimes = (logs: LogBuffer) => {
  const runtimes = new Map<string, Promise<Runtime>>()
  const llamas = new Map<LlamaGpuType, Promise<Llama>>()

  const llamaFor = (lib: NodeLlamaCpp, gpu: LlamaGpuType): Promise<Llama> => {
    let p = llamas.get(gpu)
    if (p === undefined) {
      p = lib.getLlama({
        gpu,
        build: "never",
        progressLogs: false,
        logLevel: lib.LlamaLogLevel.warn,
        logger: (level, message) => {
          if (level === lib.LlamaLogLevel.error || level === lib.LlamaLogLevel.warn || level === lib.LlamaLogLevel.fatal) {
            logs.remember(message)
          }
        }
      })
      llamas.set(gpu, p)
      p.catch(() => llamas.delete(gpu))
    }
    return p
  }

  const resolveRuntime = async (setting: LoadOptions["device"]): Promise<Runtime> => {
    const lib = await importLibrary()
    const supported = (await lib.getLlamaGpuTypes("supported")).map((g): Device => (g === false ? "cpu" : g))
    const available = GPU_ORDER.filter((d) => supported.includes(d))
    if (setting === "cpu") {
      const llama = await llamaFor(lib, false)
      return { llama, info: await describeRuntime(llama, "cpu", "device = cpu in the config", []) }
    }
    if (setting !== "auto") {
      if (!available.includes(setting)) {
        throw new DeviceUnavailable({
          device: setting,
          reason: `no ${NAMES[setting]} driver or library found on this machine`,
          available: [...available, "cpu"]
        })
      }
      const llama = await llamaFor(lib, setting).catch((e) => {
        throw new DeviceUnavailable({ device: setting, reason: describe(e), available: [...available, "cpu"] })
      })
      if (llama.gpu !== setting) {
        throw new DeviceUnavailable({ device: setting, reason: `llama.cpp started on ${String(llama.gpu)}`, available: [...available, "cpu"] })
      }
      return { llama, info: await describeRuntime(llama, setting, `device = ${setting} in the config`, []) }
    }
    // auto: CUDA, then Metal, then Vulkan, then the CPU; only devices whose drivers exist are tried
    // (trying one that is absent costs ~1 s and prints a warning)
    const warnings: Array<string> = []
    for (const device of available) {
      try {
        const llama = await llamaFor(lib, device)
        if (llama.gpu === device) {
          return { llama, info: await describeRuntime(llama, device, `auto: ${NAMES[device]} is the best device found`, warnings) }
        }
      } catch (e) {
        warnings.push(`${NAMES[device]} drivers are present but llama.cpp could not use them: ${describe(e)}`)
      }
    }
    const llama = await llamaFor(lib, false)
    warnings.push("no usable GPU (CUDA, Metal or Vulkan) found: running on the CPU, which is much slower for large models")
    return {
      llama,
      info: await describeRuntime(
        llama,
        "cpu",
        available.length === 0 ? "auto: no GPU driver found, so the CPU" : "auto: every GPU failed, so the CPU",
        warnings
      )
    }
  }

  /** The runtime for a device setting, created once per loader. */
  const runtime = (setting: LoadOptions["device"]): Effect.Effect<Runtime, DeviceUnavailable | BackendError> =>
    Effect.tryPromise({
      try: () => {
        let p = runtimes.get(setting)
        if (p === undefined) {
          p = resolveRuntime(setting)
          runtimes.set(setting, p)
          p.catch(() => runtimes.delete(setting))
        }
        return p
      },
      catch: (e) => (e instanceof DeviceUnavailable ? e : toBackendError("start llama.cpp")(e))
    }).pipe(Effect.withSpan("LlamaLoader.runtime", { attributes: { device: setting } }))

  return runtime
}
