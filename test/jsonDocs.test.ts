import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { render } from "../scripts/jsonDocs.js"

describe("docs/json.md", () => {
  it("is exactly what the schemas generate (run `npm run docs:json` after changing a type)", () => {
    const committed = readFileSync(new URL("../docs/json.md", import.meta.url), "utf8")
    expect(committed).toBe(render())
  })
})
