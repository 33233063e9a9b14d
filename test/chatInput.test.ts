/**
 * What a line typed into `llmspell chat` means (src/cli/chatInput.ts): commands, `"""` blocks,
 * `/set` values checked with the request's own ranges.
 */
import { describe, expect, it } from "vitest"
import { feedLine, parseChatInput, parseSetting, unsetField } from "../src/cli/chatInput.js"

const onTerminal = { unknownCommandIsMessage: false }
const inLineMode = { unknownCommandIsMessage: true }

describe("parseChatInput", () => {
  it.each([
    ["hello", { _tag: "Message", text: "hello" }],
    ["  padded  ", { _tag: "Message", text: "padded" }],
    ["   ", { _tag: "Empty" }],
    ["/clear", { _tag: "Clear" }],
    ["/CLEAR", { _tag: "Clear" }],
    ["/system You are terse.", { _tag: "System", text: "You are terse." }],
    ["/system", { _tag: "System", text: undefined }],
    ["/set", { _tag: "Set", name: undefined, value: undefined }],
    ["/set temperature", { _tag: "Set", name: "temperature", value: undefined }],
    ["/set temperature   0.5 ", { _tag: "Set", name: "temperature", value: "0.5" }],
    ["/unset seed", { _tag: "Unset", name: "seed" }],
    ["/save a b.json", { _tag: "Save", file: "a b.json" }],
    ["/save", { _tag: "Save", file: undefined }],
    ["/?", { _tag: "Help" }],
    ["/help", { _tag: "Help" }],
    ["/bye", { _tag: "Bye" }],
    ["/exit", { _tag: "Bye" }],
    ["/etc/hosts: what is this?", { _tag: "Message", text: "/etc/hosts: what is this?" }],
    ["/", { _tag: "Message", text: "/" }]
  ] as const)("%j", (line, expected) => {
    expect(parseChatInput(line, onTerminal)).toEqual(expected)
  })

  it("an unknown /word is a typo on a terminal and a message in line mode", () => {
    expect(parseChatInput("/clera", onTerminal)).toEqual({ _tag: "Unknown", command: "/clera" })
    expect(parseChatInput("/clera now", inLineMode)).toEqual({ _tag: "Message", text: "/clera now" })
  })
})

describe('feedLine ("""  blocks)', () => {
  const feedAll = (lines: ReadonlyArray<string>) => {
    let open: ReadonlyArray<string> | undefined
    const complete: Array<string> = []
    for (const line of lines) {
      const state = feedLine(open, line)
      if (state._tag === "Open") open = state.lines
      else {
        open = undefined
        complete.push(state.input)
      }
    }
    return { complete, open }
  }

  it("joins the lines between the quotes", () => {
    expect(feedAll(['"""first', "second", 'third"""'])).toEqual({ complete: ["first\nsecond\nthird"], open: undefined })
    expect(feedAll(['"""', "body", '"""'])).toEqual({ complete: ["\nbody\n"], open: undefined })
    expect(feedAll(['"""one line"""'])).toEqual({ complete: ["one line"], open: undefined })
    expect(feedAll(['/system """be', 'brief"""'])).toEqual({ complete: ["/system be\nbrief"], open: undefined })
  })

  it('leaves other lines alone, """ inside a sentence included; an unclosed block stays open', () => {
    expect(feedAll(['say """ please', "plain"])).toEqual({ complete: ['say """ please', "plain"], open: undefined })
    expect(feedAll(['"""', "a"])).toEqual({ complete: [], open: ["", "a"] })
    expect(feedAll(['""""""'])).toEqual({ complete: [""], open: undefined })
  })
})

describe("parseSetting", () => {
  it("takes the request's ranges, by the name typed", () => {
    expect(parseSetting("temperature", "0.7")).toEqual({ _tag: "Ok", field: "temperature", value: 0.7 })
    expect(parseSetting("max-tokens", "64")).toEqual({ _tag: "Ok", field: "maxTokens", value: 64 })
    expect(parseSetting("max_tokens", "64")).toEqual({ _tag: "Ok", field: "maxTokens", value: 64 })
    expect(parseSetting("seed", "-3")).toEqual({ _tag: "Ok", field: "seed", value: -3 })
    expect(parseSetting("think", "off")).toEqual({ _tag: "Ok", field: "reasoning", value: false })
  })

  it.each([
    ["temperature", "-0.1", "temperature must be a finite number ≥ 0"],
    ["temperature", "", "temperature must be"],
    ["max-tokens", "0", "max-tokens must be an integer ≥ 1"],
    ["max-tokens", "1.5", "max-tokens must be an integer ≥ 1"],
    ["seed", "0x10zz", "seed must be an integer"],
    ["top-p", "2", "top-p must be a number in (0, 1]"],
    ["think", "maybe", "think is on or off"],
    ["colour", "red", "unknown setting \"colour\""]
  ])("%s %j is refused", (name, value, message) => {
    const result = parseSetting(name, value)
    expect(result._tag).toBe("Invalid")
    expect(result._tag === "Invalid" ? result.message : "").toContain(message)
  })

  it("unset names a setting or the system prompt", () => {
    expect(unsetField("system")).toBe("system")
    expect(unsetField("max-tokens")).toBe("maxTokens")
    expect(unsetField("volume")).toBeUndefined()
  })
})
