/**
 * What the page reads from its server's JSON routes (src/serve/UiApi.ts). Fields that later
 * server versions add (capabilities, per-model request figures) are optional here, and the views
 * show them only when present.
 */

/** One store location of a GGUF model. */
export interface ModelLocation {
  readonly store: string
  readonly name: string
  readonly path: string
  readonly removeCommand?: string
}

/** A model of `/ui/api/models`. */
export interface UiModel {
  readonly spec: string
  readonly name: string
  readonly backend: "ollama" | "gguf" | "cloud"
  readonly instance: string
  readonly sizeBytes: number
  readonly loaded: boolean
  readonly quantization?: string
  readonly parameterSize?: string
  readonly family?: string
  readonly format?: string
  readonly modifiedAt?: string
  readonly store?: string
  readonly locations?: ReadonlyArray<ModelLocation>
  readonly files?: ReadonlyArray<string>
  /** From the listing when the server gives it (issue 23), else filled in from `/api/show`. */
  readonly capabilities?: ReadonlyArray<string>
}

/** `/ui/api/models`. */
export interface ModelsReply {
  readonly models: ReadonlyArray<UiModel>
  readonly unavailable: ReadonlyArray<{ readonly instance: string; readonly backend: string; readonly error: { readonly message: string; readonly hint?: string } }>
}

/** `/ui/api/server`. */
export interface ServerInfo {
  readonly version: string
  readonly readOnly: boolean
  readonly allowPaths: boolean
}

/** `/ui/api/removal`. */
export interface RemovalPlan {
  readonly model: string
  readonly instance: string
  readonly files: ReadonlyArray<{ readonly path: string; readonly sizeBytes?: number; readonly sharedWith?: string }>
  readonly sizeBytes?: number
}

/** A loaded model of `/ui/api/ps` (`llmspell ps --json`'s entry, with the spec that reaches it). */
export interface LoadedModel {
  readonly spec: string
  readonly name: string
  readonly sizeBytes?: number
  readonly vramBytes?: number
  readonly expiresAt?: string
  readonly activeRequests?: number
  readonly sequences?: { readonly total: number; readonly busy: number }
  readonly contextLength?: number
  readonly device?: string
  readonly backend?: string
  readonly instance?: string
  readonly purpose?: string
  /** Figures `llmspell ps` gains with the metrics (issue 24); shown when present. */
  readonly requests?: number
  readonly tokensPerSecond?: number
  readonly cacheHitRate?: number
}

/** `/ui/api/ps`. */
export interface PsReply {
  readonly models: ReadonlyArray<LoadedModel>
  readonly server: {
    readonly running: number
    readonly queued: number
    readonly inFlight: number
    readonly concurrency: number
    readonly maxQueue: number
    readonly uptimeSeconds: number
    readonly rssBytes: number
    readonly heapUsedBytes: number
  }
  readonly machine: {
    readonly totalMemoryBytes: number
    readonly freeMemoryBytes: number
    readonly cpus: number
    readonly loadAverage: ReadonlyArray<number>
  }
}
