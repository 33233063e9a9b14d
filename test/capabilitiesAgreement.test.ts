/**
 * A GGUF model's `tools` and `thinking` capabilities, as llmspell reads them from the chat template
 * without loading the model (`src/domain/ChatTemplate.ts`, for `model list`, `model info`,
 * `/api/show`, `/v1/models`), agree with what node-llama-cpp — which runs the model — makes of the
 * same file: its resolved chat wrapper's thought segments, and for a Jinja template whether it found
 * the template's own function-call syntax. Templates in the shapes the common families ship
 * (test/fixtures/chatTemplates.ts), each in a generated GGUF read by node-llama-cpp's own reader.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { JinjaTemplateChatWrapper, readGgufFileInfo, resolveChatWrapper } from "node-llama-cpp"
import { afterAll, describe, expect, it } from "vitest"
import { marksThoughts, takesTools, templateParts } from "../src/domain/ChatTemplate.js"
import type { GgufValue } from "../src/domain/GgufReader.js"
import { capabilitiesOf } from "../src/domain/ModelFacts.js"
import { TEMPLATE_CASES } from "./fixtures/chatTemplates.js"
import { prng, tinyLlamaGguf, v } from "./fixtures/ggufWriter.js"

const dir = mkdtempSync(join(tmpdir(), "llmspell-capabilities-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const metadataWith = (template: string): ReadonlyMap<string, GgufValue> =>
  new Map<string, GgufValue>([["general.architecture", "llama"], ["tokenizer.chat_template", template]])

describe("capabilities from a chat template agree with node-llama-cpp's resolved wrapper", () => {
  for (const c of TEMPLATE_CASES) {
    it(c.name, async () => {
      const path = join(dir, `${c.name.replace(/\W+/g, "-")}.gguf`)
      writeFileSync(path, tinyLlamaGguf({ overrideMetadata: { "tokenizer.chat_template": v.str(c.template) } }))
      const ours = capabilitiesOf(metadataWith(c.template))
      expect(ours.includes("tools"), "tools").toBe(c.tools)
      expect(ours.includes("thinking"), "thinking").toBe(c.thinking)
      expect(ours[0]).toBe("completion")

      const fileInfo = await readGgufFileInfo(path)
      const wrapper = resolveChatWrapper({ fileInfo, bosString: "<s>" })
      expect(wrapper).toBeDefined()
      // thought segments: what node-llama-cpp separates from the answer is what `thinking` promises
      expect(wrapper!.settings.segments?.thought != null, `${wrapper!.constructor.name}'s thought segments`).toBe(c.thinking)
      // a Jinja template's own tool-call syntax found by rendering it, where node-llama-cpp runs the
      // template itself (a specialized wrapper brings its own syntax whatever the template says)
      if (wrapper instanceof JinjaTemplateChatWrapper) expect(wrapper.usingJinjaFunctionCallTemplate, "the template's tool syntax").toBe(c.tools)
    })
  }
})

describe("reading a template", () => {
  it("code without comments or strings; raw blocks are text", () => {
    const parts = templateParts(
      "{# tools #}{{ 'tools' + \"it's \\\" tools\" }}{% if tools %}x{% endif %}{% raw %}{{ tools }}{% endraw %}<think>"
    )
    expect(parts.code).not.toContain("'")
    expect(parts.code.match(/tools/g)).toHaveLength(1)
    expect(parts.uncommented).not.toContain("{#")
    expect(parts.uncommented).toContain("{% raw %}{{ tools }}")
    expect(takesTools(templateParts("{% raw %}{% if tools %}{% endraw %}"))).toBe(false)
    expect(takesTools(templateParts("{%- for t in tools -%}{{ t | tojson }}{%- endfor -%}"))).toBe(true)
    expect(takesTools(templateParts("{{ message.tools }}"))).toBe(false)
  })

  it("a thought pair needs both halves outside comments", () => {
    expect(marksThoughts(templateParts("{{ '<think>' }}{{ '</think>' }}"))).toBe(true)
    expect(marksThoughts(templateParts("<think> {# </think> #}"))).toBe(false)
    expect(marksThoughts(templateParts("[THINK]x[/THINK]"))).toBe(true)
  })

  it("unclosed blocks, strings and comments run to the end without throwing", () => {
    for (const t of ["{{ 'tools", "{% if tools", "{# tools", "{", "{{", "}}{%", "{{ \"a\\", "{% raw %}{{ tools }}"]) {
      const parts = templateParts(t)
      expect(typeof parts.code).toBe("string")
    }
    expect(takesTools(templateParts("{% if tools"))).toBe(true)
    expect(takesTools(templateParts("{{ 'tools"))).toBe(false)
  })

  it("any bytes: never throws, and the result is no longer than the input", () => {
    const random = prng(23)
    const alphabet = ["{", "}", "%", "#", "'", "\"", "\\", "-", " ", "tools", "raw", "endraw", "<think>", "</think>", "a"]
    for (let round = 0; round < 2000; round++) {
      const length = Math.floor(random() * 40)
      let t = ""
      for (let i = 0; i < length; i++) t += alphabet[Math.floor(random() * alphabet.length)]
      const parts = templateParts(t)
      expect(parts.uncommented.length).toBeLessThanOrEqual(t.length)
      expect(parts.code.length).toBeLessThanOrEqual(t.length * 2 + 2)
    }
  })
})
