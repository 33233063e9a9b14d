import { describe, expect, it } from "vitest"
import { toBackendError } from "../src/layers/gguf/llama.js"

describe("node-llama-cpp errors as BackendError", () => {
  it("a missing llama.cpp binary says how to get one (it printed no hint at all)", () => {
    const noBinary = Object.assign(new Error("NoBinaryFoundError"), { name: "NoBinaryFoundError" })
    const error = toBackendError("start llama.cpp", "gguf")(noBinary)
    expect(error.message).toContain("gguf: start llama.cpp failed")
    expect(error.hint).toContain("npx --no node-llama-cpp source download")
    expect(error.hint).toContain("llmspell model status")
  })

  it("an unknown error keeps no invented hint: it says where to look, not what went wrong", () => {
    const hint = toBackendError("load model")(new Error("boom")).hint
    expect(hint).toContain("`llmspell model status --backend gguf`")
    expect(hint).not.toMatch(/node-llama-cpp|context_size|unloaded/)
  })
})
