/**
 * The one call record of llmspell/testing: every fake (the scripted backends, the downloader, the
 * GGUF loader) appends a `Call` of the same shape to a `CallLog`, a plain array a test reads. Give
 * several fakes the same log to see the order of everything your program did across them.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { BackendType, GenerateRequest } from "../domain/Types.js"

/** Which fake recorded a call. */
export type CallSource = BackendType | "downloader" | "loader"

/** One call a fake received. */
export interface Call {
  /** The fake: a scripted backend ("ollama", "gguf"), the downloader, or the GGUF loader. */
  readonly source: CallSource
  /** The method: `generate`, `embed`, `tokenize`, `pull`, `load`, `unload`, … */
  readonly operation: string
  /** The backend type of the fake (for the downloader and the loader: "gguf"). */
  readonly backend: BackendType
  /** The backend instance (or the downloader's store instance), when there is one. */
  readonly instance?: string
  /** The model: a name or spec, a pull reference, or the file a loader loads. */
  readonly model?: string
  /** What the call carried: a GenerateRequest, the texts to embed or tokenize, pull or load options. */
  readonly input?: unknown
  /** When (the Effect Clock's milliseconds: TestClock time in tests). */
  readonly at: number
  /** Same as `input` for `generate` (kept for earlier tests). */
  readonly request?: GenerateRequest
  /** Same as `input` for `embed` (kept for earlier tests). */
  readonly inputs?: ReadonlyArray<string>
  /** Same as `model` for the downloader (kept for earlier tests). */
  readonly ref?: string
}

/** Where fakes record their calls: an array, appended to in call order. */
export type CallLog = Array<Call>

/** The calls of a log, read as `source:operation:model` lines (a compact thing to assert on). */
export const describeCalls = (log: ReadonlyArray<Call>): Array<string> =>
  log.map((c) => `${c.source}:${c.operation}${c.model !== undefined ? `:${c.model}` : ""}`)

/** A new, empty log. */
export const makeCallLog = (): CallLog => []

/** Appends a call stamped with the Clock's time. */
export const recordCall = (log: CallLog, call: Omit<Call, "at">): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (at) =>
    Effect.sync(() => {
      log.push({ ...call, at })
    }))
