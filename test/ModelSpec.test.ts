/** The model spec grammar `[provider/]model[@backend]`: every example and rejection of issue 2. */
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { FastCheck as fc } from "effect"
import { InvalidModelSpec, MODEL_SPEC_GRAMMAR } from "../src/domain/Errors.js"
import * as ModelSpec from "../src/domain/ModelSpec.js"

const ok = (text: string, known: ReadonlyArray<string> = []) => {
  const r = ModelSpec.parse(text, known)
  if (Either.isLeft(r)) throw new Error(`expected ${JSON.stringify(text)} to parse: ${r.left.message}`)
  return r.right
}
const bad = (text: string, known: ReadonlyArray<string> = []) => {
  const r = ModelSpec.parse(text, known)
  if (Either.isRight(r)) throw new Error(`expected ${JSON.stringify(text)} to be rejected, got ${JSON.stringify(r.right)}`)
  return r.left
}

describe("ModelSpec.parse: the issue's examples", () => {
  it.each([
    ["local/llama3.1:8b", [], { provider: "local", model: "llama3.1:8b" }],
    ["local/phi3:3.8b@ollama", [], { provider: "local", model: "phi3:3.8b", backend: "ollama" }],
    ["ollama/llama3.2", [], { provider: "ollama", model: "llama3.2" }],
    ["gguf/qwen2.5:0.5b", [], { provider: "gguf", model: "qwen2.5:0.5b" }],
    ["candle/qwen2.5:0.5b", [], { provider: "candle", model: "qwen2.5:0.5b" }],
    ["openai/gpt-4o", [], { provider: "openai", model: "gpt-4o" }],
    ["workstation/qwen2.5:7b", ["workstation"], { provider: "workstation", model: "qwen2.5:7b" }],
    ["workstation/qwen2.5:7b", [], { model: "workstation/qwen2.5:7b" }],
    [
      "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M@gguf",
      [],
      { model: "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", backend: "gguf" }
    ],
    ["hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", [], { model: "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M" }],
    ["qwen2.5:0.5b", [], { model: "qwen2.5:0.5b" }],
    ["qwen2.5:0.5b@candle", [], { model: "qwen2.5:0.5b", backend: "candle" }],
    ["./models/x.gguf", [], { model: "./models/x.gguf" }],
    ["../models/x.gguf", [], { model: "../models/x.gguf" }],
    ["/abs/x.gguf", [], { model: "/abs/x.gguf" }],
    ["file:///abs/x.gguf", [], { model: "file:///abs/x.gguf" }],
    ["~/models/x.gguf", [], { model: "~/models/x.gguf" }],
    ["/abs/x.gguf@gguf", [], { model: "/abs/x.gguf", backend: "gguf" }],
    // '@' inside a file name is part of the path unless a backend follows it.
    ["./models/x@v2.gguf", [], { model: "./models/x@v2.gguf" }],
    // '@' splits at the rightmost occurrence.
    ["user@host/model@ollama", [], { model: "user@host/model", backend: "ollama" }]
  ] as const)("%s (known %j)", (text, known, expected) => {
    expect(ok(text, known)).toStrictEqual(expected)
  })

  it("a configured instance name beats nothing, a provider type needs no configuration", () => {
    expect(ok("lab/x", ["lab"]).provider).toBe("lab")
    expect(ok("lab/x").provider).toBeUndefined()
    expect(ok("local/x", []).provider).toBe("local")
  })
})

describe("ModelSpec.parse: rejections show the grammar", () => {
  it.each([
    ["", /empty/],
    ["   ", /empty/],
    ["\t\n", /empty/],
    ["@ollama", /no model before '@ollama'/],
    ["x@", /nothing follows '@'/],
    ["x@llamafile", /unknown backend "llamafile"/],
    ["qwen2.5:0.5b@Ollama", /unknown backend "Ollama"/],
    ["qwen 2.5", /a space \(U\+0020\) at position 4/],
    ["qwen\t2.5", /whitespace \(U\+0009\)/],
    ["qwen2.5\u00a0", /whitespace \(U\+00A0\)/],
    ["qwen\u00002.5", /control character \(U\+0000\)/],
    ["qwen\u001b[0m", /control character \(U\+001B\)/],
    ["qwen\u2028x", /U\+2028/],
    ["bartowski/../etc/passwd", /'\.' and '\.\.' segments/],
    ["hf.co/bartowski/../x", /'\.' and '\.\.' segments/],
    ["local/../x", /'\.' and '\.\.' segments/],
    ["bartowski//x", /empty path segment/],
    ["bartowski/x/", /empty path segment/],
    ["local/", /no model after 'local\/'/],
    ["local/@ollama", /no model after 'local\/'/],
    ["x".repeat(513), /longer than 512 characters/]
  ] as const)("%j", (text, reason) => {
    const error = bad(text)
    expect(error).toBeInstanceOf(InvalidModelSpec)
    expect(error._tag).toBe("InvalidModelSpec")
    expect(error.reason).toMatch(reason)
    expect(error.message).toMatch(/^invalid model spec /)
    expect(error.hint).toContain(`a model spec is ${MODEL_SPEC_GRAMMAR}`)
    expect(error.hint).toContain("[provider/]model[@backend]")
  })

  it("a file URL that cannot be a local path is refused at parse time, not at open", () => {
    expect(bad("file://host/x.gguf").reason).toMatch(/not a usable file URL .*host/)
    expect(bad("file:///tmp/a%2Fb.gguf").reason).toMatch(/not a usable file URL .*encoded/)
    expect(bad("file:///%00.gguf").reason).toMatch(/NUL/)
    expect(ok("file:///abs/x.gguf")).toEqual({ model: "file:///abs/x.gguf" })
    expect(ok("file://localhost/abs/x.gguf")).toEqual({ model: "file://localhost/abs/x.gguf" })
  })

  it("512 characters are accepted, 513 are not", () => {
    expect(ok("m".repeat(512)).model).toHaveLength(512)
    expect(bad("m".repeat(513)).reason).toMatch(/512/)
  })

  it("the message truncates a huge spec instead of echoing it whole", () => {
    expect(bad(`${"y".repeat(2000)} x`).message.length).toBeLessThan(300)
  })

  it("a non-string from untyped callers fails typed instead of throwing", () => {
    expect(bad(undefined as unknown as string).reason).toMatch(/string/)
    expect(bad(42 as unknown as string).reason).toMatch(/string/)
  })
})

describe("ModelSpec.format", () => {
  it.each([
    "local/llama3.1:8b",
    "local/phi3:3.8b@ollama",
    "ollama/llama3.2",
    "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M@gguf",
    "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
    "qwen2.5:0.5b@candle",
    "./models/x.gguf",
    "./models/x@v2.gguf",
    "/abs/x.gguf@gguf",
    "file:///abs/x.gguf"
  ])("round-trips %s", (text) => {
    expect(ModelSpec.format(ok(text))).toBe(text)
  })

  it("round-trips a configured instance", () => {
    expect(ModelSpec.format(ok("workstation/qwen2.5:7b", ["workstation"]))).toBe("workstation/qwen2.5:7b")
  })
})

describe("ModelSpec properties", () => {
  const known = ["workstation", "lab-2"]
  const parseSafely = (text: string) => {
    const r = ModelSpec.parse(text, known)
    // Never throws, and a failure is always the typed error.
    if (Either.isLeft(r)) expect(r.left).toBeInstanceOf(InvalidModelSpec)
    return r
  }

  it("parsing arbitrary strings never throws: it succeeds or fails typed", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 600 }),
          fc.string({ unit: "binary", maxLength: 80 }),
          fc.string({ unit: fc.constantFrom("/", "@", ".", ":", "a", "local", "ollama", "gguf", " ", "~", "\u0000"), maxLength: 20 })
        ),
        (text) => {
          parseSafely(text)
        }
      ),
      { numRuns: 2000 }
    )
  })

  it("every string that parses round-trips through format, and re-parses to the same spec", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom("/", "@", ".", ":", "a", "b", "local", "ollama", "gguf", "workstation", "./", "~"), maxLength: 12 }),
        (text) => {
          const r = parseSafely(text)
          if (Either.isRight(r)) {
            expect(ModelSpec.format(r.right)).toBe(text)
            expect(ModelSpec.parse(ModelSpec.format(r.right), known)).toStrictEqual(r)
          }
        }
      ),
      { numRuns: 3000 }
    )
  })

  const segment = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,15}$/).filter((s) => s !== "." && s !== "..")
  const validSpec = fc.record({
    provider: fc.option(fc.constantFrom("local", "ollama", "gguf", "candle", "workstation", "openai"), { nil: undefined }),
    model: fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join("/")),
    backend: fc.option(fc.constantFrom("ollama", "gguf", "candle"), { nil: undefined })
  })

  it("generated valid specs parse back to themselves", () => {
    fc.assert(
      fc.property(validSpec, (spec) => {
        const text = ModelSpec.format(spec)
        const parsed = ok(text, known)
        expect(ModelSpec.format(parsed)).toBe(text)
        expect(parsed.backend).toBe(spec.backend)
        // Without a provider, a model whose first segment names a provider type is read as one: that is the grammar.
        if (spec.provider !== undefined) {
          expect(parsed).toStrictEqual(
            Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined))
          )
        }
      }),
      { numRuns: 1000 }
    )
  })
})
