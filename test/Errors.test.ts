/**
 * Every error says what to do next. For each error class of the one union, instances with
 * generated field values (Schema's Arbitrary: any spec, path, backend name, operation…) must carry
 * a non-empty `hint` that names a command that works (`llmspell …`), or the option, variable or
 * config setting to change. A `suggestion` field replaces the default hint where the code that
 * fails knows better; it is left out here, so every default is checked. And the tag list, the
 * type and the protocol's failure schema all come from the one union.
 */
import * as Arbitrary from "effect/Arbitrary"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import { describe, expect, expectTypeOf, it } from "vitest"
import {
  BackendError,
  BackendUnavailable,
  isLlmspellError,
  LlmspellError,
  type LlmspellErrorTag,
  LlmspellErrorTags
} from "../src/domain/Errors.js"
import { errorToJson } from "../src/domain/Failure.js"

/** A command in backticks, a `--flag`, an environment variable, or a config setting. */
const ACTIONABLE = new RegExp(
  [
    "`llmspell[^`]*`",
    "`ollama serve`",
    "(^|[\\s(`])--[a-z][a-z-]+",
    "\\b[A-Z]{2,}(_[A-Z0-9]+)+\\b",
    "\\[providers\\.",
    "\\b(model_directory|context_size|timeout_seconds|api_key|base_url|hub\\.token|hub\\.endpoint|maxTokens)\\b",
    "\\bdevice = "
  ].join("|")
)

// Generated errors of every kind, without a caller's `suggestion`: the default hints.
const generated = FastCheck.sample(
  Arbitrary.make(LlmspellError).filter((error) => !("suggestion" in error) || error.suggestion === undefined),
  { numRuns: 3000, seed: 20 }
)

describe("every error has a hint that says what to do", () => {
  for (const tag of LlmspellErrorTags) {
    it(tag, () => {
      const errors = generated.filter((error) => error._tag === tag)
      expect(errors.length).toBeGreaterThan(20)
      for (const error of errors) {
        expect(typeof error.hint, error._tag).toBe("string")
        expect(error.hint.trim().length, error._tag).toBeGreaterThan(0)
        expect(error.hint, `${error._tag}: ${error.hint}`).toMatch(ACTIONABLE)
        // the hint says what to do; it is not the message again
        expect(error.hint).not.toBe(error.message)
        expect(errorToJson(error).hint).toBe(error.hint)
      }
    })
  }

  it("a backend error with no known cause guesses none: it says where to look", () => {
    const unknown = new BackendError({ backend: "gguf", instance: "cpu", operation: "load model", reason: "boom" })
    expect(unknown.hint).toContain("`llmspell model status --backend gguf` checks cpu")
    const down = new BackendUnavailable({ backend: "cloud", instance: "openai", reason: "HTTP 503" })
    expect(down.hint).toContain("`llmspell model status --backend cloud`")
    const suggested = new BackendError({ backend: "ollama", operation: "pull", reason: "x", suggestion: "do this" })
    expect(suggested.hint).toBe("do this")
  })

  it("hint is a string on the union itself: front ends read it without a cast", () => {
    expectTypeOf<LlmspellError["hint"]>().toEqualTypeOf<string>()
    const error: LlmspellError = new BackendUnavailable({ backend: "ollama", reason: "down" })
    expect(error.hint).toContain("ollama serve")
  })
})

describe("one union", () => {
  it("the tag list is the union's members, each once", () => {
    expect(LlmspellErrorTags).toHaveLength(LlmspellError.members.length)
    expect(new Set(LlmspellErrorTags).size).toBe(LlmspellErrorTags.length)
    expectTypeOf(LlmspellErrorTags).toEqualTypeOf<ReadonlyArray<LlmspellErrorTag>>()
    for (const member of LlmspellError.members) expect(LlmspellErrorTags).toContain(member._tag)
  })

  it("every member round-trips through the union's encoding (what the protocol sends)", () => {
    const encode = Schema.encodeSync(LlmspellError)
    const decode = Schema.decodeUnknownSync(LlmspellError)
    for (const sample of FastCheck.sample(Arbitrary.make(LlmspellError), { numRuns: 300, seed: 7 })) {
      const decoded = decode(encode(sample))
      expect(isLlmspellError(decoded)).toBe(true)
      expect(decoded._tag).toBe(sample._tag)
      expect(decoded.hint).toBe(sample.hint)
    }
  })
})
