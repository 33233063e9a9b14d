/**
 * The GGUF context-sequence choice (`chooseSequence`, pure): which sequence a prompt lands on (the
 * longest shared prefix; ties and misses the least recently used; a prefix another conversation
 * holds copied rather than taken from it), and the eviction order when conversations outnumber
 * sequences.
 */
import { describe, expect, it } from "@effect/vitest"
import { type Candidate, chooseSequence, copySource, prefixChooser, sharedPrefixLength } from "../src/layers/gguf/sequenceChoice.js"

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i)
/** A shared system prompt of 100 tokens, then each conversation's own tokens. */
const SYSTEM = range(1, 100)
const conversation = (id: number, turns: number) => [...SYSTEM, ...range(1000 * id, 20 * turns)]

const free = (id: number, tokens: ReadonlyArray<number>, promptTokens: number, lastUsed: number): Candidate => ({ id, tokens, promptTokens, lastUsed })
const empty = (id: number): Candidate => free(id, [], 0, 0)

describe("sharedPrefixLength", () => {
  it("counts the leading tokens two lists share", () => {
    expect(sharedPrefixLength([1, 2, 3], [1, 2, 4])).toBe(2)
    expect(sharedPrefixLength([1, 2], [1, 2, 3])).toBe(2)
    expect(sharedPrefixLength([], [1])).toBe(0)
    expect(sharedPrefixLength([5], [1])).toBe(0)
  })
})

describe("chooseSequence", () => {
  const copy = { canCopy: true } as const
  const noCopy = { canCopy: false } as const

  it("no free sequence: no choice", () => {
    expect(chooseSequence([], [1, 2], copy)).toBeUndefined()
  })

  it("a miss goes to the least recently used sequence (never used first, then the lowest id)", () => {
    const prompt = range(5000, 50)
    expect(chooseSequence([free(0, range(1, 50), 40, 7), free(1, range(1, 50), 40, 3), free(2, range(900, 9), 5, 5)], prompt, copy))
      .toEqual({ id: 1, sharedPrefix: 0 })
    expect(chooseSequence([free(0, range(1, 50), 40, 7), empty(2), empty(1)], prompt, copy)).toEqual({ id: 1, sharedPrefix: 0 })
  })

  it("the next turn of a conversation lands on the sequence holding its previous turn, however recently others were used", () => {
    const turn1 = conversation(1, 1)
    const answer1 = range(77_000, 10)
    const turn2 = [...turn1, ...answer1, ...range(78_000, 20)]
    const choice = chooseSequence(
      [free(0, conversation(2, 1), conversation(2, 1).length, 9), free(1, [...turn1, ...answer1], turn1.length, 1), empty(2)],
      turn2,
      copy
    )
    expect(choice).toEqual({ id: 1, sharedPrefix: turn1.length + answer1.length })
  })

  it("an answer re-rendered differently at the turn boundary still counts as the same conversation", () => {
    const turn1 = conversation(1, 1)
    // generated tokens that the template renders back as other tokens from the second one on
    const held = [...turn1, 42, 43, 44]
    const turn2 = [...turn1, 42, 99, 98, ...range(78_000, 20)]
    expect(chooseSequence([free(0, held, turn1.length, 5), empty(1)], turn2, copy)).toEqual({ id: 0, sharedPrefix: turn1.length + 1 })
    // diverging a few tokens before the end of the last prompt (the boundary slack) is still a continuation
    const edited = [...turn1.slice(0, -3), 7, 7, 7, 7]
    expect(chooseSequence([free(0, held, turn1.length, 5), empty(1)], edited, copy)).toEqual({ id: 0, sharedPrefix: turn1.length - 3 })
  })

  it("ties go to the least recently used", () => {
    const prompt = [...SYSTEM, ...range(9000, 30)]
    expect(chooseSequence([free(0, conversation(1, 2), 130, 8), free(1, conversation(2, 2), 130, 2), free(2, conversation(3, 2), 130, 5)], prompt, copy))
      .toEqual({ id: 1, sharedPrefix: SYSTEM.length })
  })

  it("a prefix another conversation holds is copied to a free empty sequence, not taken from it", () => {
    const prompt = [...SYSTEM, ...range(9000, 30)]
    const a = conversation(1, 2)
    expect(chooseSequence([free(0, a, a.length - 5, 4), empty(1), empty(2)], prompt, copy))
      .toEqual({ id: 1, sharedPrefix: SYSTEM.length, copyFrom: 0 })
  })

  it("the copy goes to the least recently used sequence when every free one holds a conversation of its own", () => {
    const prompt = [...SYSTEM, ...range(9000, 30)]
    const a = conversation(1, 2)
    const other = range(50_000, 200)
    expect(chooseSequence([free(0, a, a.length, 9), free(1, other, 150, 2), free(2, other, 150, 6)], prompt, copy))
      .toEqual({ id: 1, sharedPrefix: SYSTEM.length, copyFrom: 0 })
  })

  it("without copies a new conversation takes an empty sequence rather than the history of another one sharing its system prompt", () => {
    const prompt = [...SYSTEM, ...range(9000, 30)]
    const a = conversation(1, 2)
    expect(chooseSequence([free(0, a, a.length, 4), empty(1)], prompt, noCopy)).toEqual({ id: 1, sharedPrefix: 0 })
    // its own conversation's next turn still finds it
    expect(chooseSequence([free(0, a, a.length, 4), empty(1)], [...a, 5, 6], noCopy)).toEqual({ id: 0, sharedPrefix: a.length })
  })

  it("without copies and no empty sequence, a miss goes to the least recently used, not to the conversation holding the shared system prompt", () => {
    const prompt = [...SYSTEM, ...range(9000, 30)]
    const a = conversation(1, 2)
    const other = range(50_000, 200)
    expect(chooseSequence([free(0, other, 150, 1), free(1, a, a.length, 4), free(2, conversation(2, 2), 140, 3)], prompt, noCopy))
      .toEqual({ id: 0, sharedPrefix: 0 })
    // among sequences that all hold the system prompt, the least recently used keeps it
    expect(chooseSequence([free(1, a, a.length, 4), free(2, conversation(2, 2), 140, 3)], prompt, noCopy))
      .toEqual({ id: 2, sharedPrefix: SYSTEM.length })
  })

  it("copySource: the free sequence holding a longer prefix than the chosen one, by at least minCopyTokens", () => {
    const prompt = [...SYSTEM, ...range(9000, 30)]
    const a = conversation(1, 2)
    expect(copySource([], [free(0, a, a.length, 4), free(2, range(50_000, 20), 10, 1)], prompt)).toEqual({ id: 0, upTo: SYSTEM.length })
    // the chosen one already holds it: nothing to copy
    expect(copySource(conversation(2, 1), [free(0, a, a.length, 4)], prompt)).toBeUndefined()
    // too little to gain
    expect(copySource(SYSTEM.slice(0, 80), [free(0, a, a.length, 4)], prompt)).toBeUndefined()
    expect(copySource(SYSTEM.slice(0, 80), [free(0, a, a.length, 4)], prompt, 10)).toEqual({ id: 0, upTo: SYSTEM.length })
    expect(copySource([], [], prompt)).toBeUndefined()
  })

  it("a copy saving fewer than minCopyTokens is not worth it: the prompt is evaluated on the target", () => {
    const prompt = [...SYSTEM.slice(0, 10), ...range(9000, 30)]
    const a = conversation(1, 2)
    expect(chooseSequence([free(0, a, a.length, 4), empty(1)], prompt, copy)).toEqual({ id: 1, sharedPrefix: 0 })
    expect(chooseSequence([free(0, a, a.length, 4), empty(1)], prompt, { canCopy: true, minCopyTokens: 5 }))
      .toEqual({ id: 1, sharedPrefix: 10, copyFrom: 0 })
  })

  it("eviction order: more conversations than sequences evict the least recently used, and a returning one finds the shared prefix", () => {
    // a simulated model: 2 sequences, 3 conversations taking turns; each answer is 5 tokens
    const held: Array<{ tokens: Array<number>; promptTokens: number; lastUsed: number }> = [
      { tokens: [], promptTokens: 0, lastUsed: 0 },
      { tokens: [], promptTokens: 0, lastUsed: 0 }
    ]
    let clock = 0
    const landed: Array<string> = []
    const histories = new Map<number, Array<number>>()
    const turn = (c: number) => {
      const prompt = [...(histories.get(c) ?? SYSTEM), ...range(1000 * c + 100 * clock, 10)]
      const choice = chooseSequence(held.map((h, id) => ({ id, ...h })), prompt, copy)!
      const answer = range(500_000 + 100 * clock, 5)
      held[choice.id] = { tokens: [...prompt, ...answer], promptTokens: prompt.length, lastUsed: ++clock }
      histories.set(c, [...prompt, ...answer])
      landed.push(`c${c}→s${choice.id}:${choice.sharedPrefix}${choice.copyFrom !== undefined ? `(copy s${choice.copyFrom})` : ""}`)
    }
    for (const c of [1, 2, 1, 2, 3, 1, 2]) turn(c)
    expect(landed).toEqual([
      "c1→s0:0",
      // the second conversation gets the system prompt copied into the empty sequence
      "c2→s1:100(copy s0)",
      "c1→s0:115",
      "c2→s1:115",
      // a third evicts the least recently used (c1 on s0), keeping the system prompt
      "c3→s0:100",
      // c1 comes back: its own history is gone, the least recently used (c2's s1) gives it the system prompt
      "c1→s1:100",
      "c2→s0:100"
    ])
  })
})

describe("prefixChooser (the sequence queue's chooser)", () => {
  it("picks among the queue's free sequences by what each one holds; ties to the least recently used", () => {
    const slots = [
      { tokens: conversation(1, 2), promptTokens: 130 },
      { tokens: conversation(2, 2), promptTokens: 130 },
      { tokens: [] as Array<number>, promptTokens: 0 }
    ]
    const choose = prefixChooser((slot: (typeof slots)[number]) => slot)
    const free = [{ sequence: slots[0]!, lastUsed: 5 }, { sequence: slots[1]!, lastUsed: 2 }, { sequence: slots[2]!, lastUsed: 9 }]
    // conversation 2's next turn: its own sequence, though used longer ago than the others
    expect(choose(free, [...conversation(2, 2), 7, 7]).sequence).toBe(slots[1])
    // a new conversation with the same system prompt: the empty sequence, not another's history
    expect(choose(free, [...SYSTEM, 4, 4]).sequence).toBe(slots[2])
    // no empty one left: a miss, the least recently used
    expect(choose(free.slice(0, 2), [...SYSTEM, 4, 4]).sequence).toBe(slots[1])
    expect(choose([free[0]!, { ...free[1]!, lastUsed: 7 }], [...SYSTEM, 4, 4]).sequence).toBe(slots[0])
  })
})
