/**
 * Which context sequence a GGUF generation runs on. A sequence's KV cache keeps the tokens last
 * evaluated on it (node-llama-cpp's `sequence.contextTokens`), and `LlamaChat` evaluates only the
 * part of a prompt that differs from them; so a conversation's next turn, which re-sends the whole
 * history, costs only its new tokens when it lands on the sequence that served its previous turn.
 * `chooseSequence` (pure) takes the free sequence holding the longest prefix of the prompt, as
 * llama-server chooses slots by prompt similarity; ties and misses go to the least recently used.
 * Where the model's cache can copy a prefix between sequences (`llama_memory_seq_cp`: a buffer
 * copy, far cheaper than evaluating the tokens again), a sequence holding another conversation past
 * the shared part (an agent's system prompt and tools, say) is not taken from it: the prefix is
 * copied to the sequence worth least. `prefixChooser` is the chooser the sequence queue
 * (`sequenceQueue.ts`) calls, with the prompt's tokens, whenever it hands a sequence out.
 */
import type { ChooseSequence } from "./sequenceQueue.js"

/** What the choice sees of one free sequence. */
export interface Candidate {
  readonly id: number
  /** The tokens in its KV cache now. */
  readonly tokens: ReadonlyArray<number>
  /**
   * How many of `tokens` were the prompt of the last request on it (the rest are its answer);
   * 0 for a sequence never used.
   */
  readonly promptTokens: number
  /** When it was last taken or given back (a counter; 0: never). */
  readonly lastUsed: number
}

/** Where a request goes, and what it finds there. */
export interface SequenceChoice {
  readonly id: number
  /** Tokens of the prompt the sequence holds once chosen (after the copy, if any). */
  readonly sharedPrefix: number
  /** Copy the first `sharedPrefix` tokens of this (free) sequence into the chosen one first. */
  readonly copyFrom?: number | undefined
}

/** Knobs of the choice. */
export interface ChoiceOptions {
  /** Whether a prefix can be copied between sequences (the model's KV cache allows it). */
  readonly canCopy: boolean
  /** A copy must save at least this many tokens (below it the prompt is evaluated). Default 32. */
  readonly minCopyTokens?: number | undefined
  /**
   * A sequence counts as continued by a prompt when the prompt shares all of its last prompt but
   * up to this many tokens (a chat template may render the turn boundary a little differently
   * than it was generated). Default 4.
   */
  readonly boundarySlack?: number | undefined
}

/** How many leading tokens two token lists share. */
export const sharedPrefixLength = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): number => {
  const n = Math.min(a.length, b.length)
  let i = 0
  while (i < n && a[i] === b[i]) i++
  return i
}

interface Scored {
  readonly sequence: Candidate
  readonly shared: number
  /** Taking it loses nothing but an answer's tail: it is empty, or this prompt continues its last one. */
  readonly continued: boolean
}

const leastRecentlyUsed = (candidates: ReadonlyArray<Scored>): Scored =>
  candidates.reduce((a, b) => (b.sequence.lastUsed < a.sequence.lastUsed || (b.sequence.lastUsed === a.sequence.lastUsed && b.sequence.id < a.sequence.id) ? b : a))

const longest = (candidates: ReadonlyArray<Scored>): ReadonlyArray<Scored> => {
  const best = Math.max(...candidates.map((c) => c.shared))
  return candidates.filter((c) => c.shared === best)
}

/**
 * The free sequence a prompt should run on (undefined when none is free):
 * 1. the one holding the longest prefix of the prompt (ties and misses: the least recently used),
 *    when taking it loses nothing — it is empty, or the prompt continues its last prompt (the
 *    conversation's previous turn, whose answer tail may be re-evaluated);
 * 2. else that prefix belongs to another conversation too (an agent's system prompt, say): the
 *    prompt goes to the sequence whose content is worth least — empty, or one it continues, else
 *    the least recently used (a miss) — never to the holder of the shared prefix, whose
 *    conversation would take it back on its next turn, each evicting the other's history turn
 *    after turn (llama-server's choice by similarity does that);
 * 3. with `canCopy`, the shared prefix is copied from its holder into the chosen sequence when that
 *    saves at least `minCopyTokens`, so both conversations keep their cache.
 */
export const chooseSequence = (
  free: ReadonlyArray<Candidate>,
  prompt: ReadonlyArray<number>,
  options: ChoiceOptions
): SequenceChoice | undefined => {
  if (free.length === 0) return undefined
  const slack = options.boundarySlack ?? 4
  const minCopy = options.minCopyTokens ?? 32
  const scored: Array<Scored> = free.map((sequence) => {
    const shared = sharedPrefixLength(sequence.tokens, prompt)
    const anchor = Math.min(sequence.promptTokens, sequence.tokens.length)
    return { sequence, shared, continued: shared >= anchor - slack }
  })
  const holders = longest(scored)
  const best = holders[0]!.shared
  const continuedHolders = holders.filter((h) => h.continued)
  if (continuedHolders.length > 0) return { id: leastRecentlyUsed(continuedHolders).sequence.id, sharedPrefix: best }
  const continued = scored.filter((s) => s.continued)
  const target = continued.length > 0 ? leastRecentlyUsed(longest(continued)) : leastRecentlyUsed(scored)
  if (!options.canCopy || best - target.shared < minCopy) return { id: target.sequence.id, sharedPrefix: target.shared }
  return { id: target.sequence.id, sharedPrefix: best, copyFrom: leastRecentlyUsed(holders).sequence.id }
}

/** What a sequence holds, as the chooser reads it. */
export interface HeldPrompt {
  /** The tokens in its KV cache now (node-llama-cpp's `sequence.contextTokens`). */
  readonly tokens: ReadonlyArray<number>
  /** The length of the prompt of the last request that ran on it (0: none yet). */
  readonly promptTokens: number
}

/**
 * The sequence queue's chooser by shared prompt prefix: `held` reads what a sequence holds, the
 * request is its prompt's tokens. Copies between sequences are not made here (`canCopy` false).
 */
export const prefixChooser = <S>(held: (sequence: S) => HeldPrompt): ChooseSequence<S, ReadonlyArray<number>> => (free, prompt) => {
  const choice = chooseSequence(
    free.map((f, id) => ({ id, ...held(f.sequence), lastUsed: f.lastUsed })),
    prompt,
    { canCopy: false }
  )
  // never undefined: the queue calls it with at least one free sequence
  return free[choice?.id ?? 0]!
}

/**
 * After a sequence was chosen (and taken) for a prompt: the other sequence, among `others`, whose
 * cache holds a longer prefix of the prompt than the chosen one's, by at least `minCopyTokens`
 * (default 32) — the prefix to copy into it, `upTo` tokens — or undefined.
 */
export const copySource = (
  chosen: ReadonlyArray<number>,
  others: ReadonlyArray<Candidate>,
  prompt: ReadonlyArray<number>,
  minCopyTokens = 32
): { readonly id: number; readonly upTo: number } | undefined => {
  const own = sharedPrefixLength(chosen, prompt)
  const scored = others.map((sequence) => ({ sequence, shared: sharedPrefixLength(sequence.tokens, prompt), continued: false }))
  if (scored.length === 0) return undefined
  const best = leastRecentlyUsed(longest(scored))
  return best.shared - own >= minCopyTokens ? { id: best.sequence.id, upTo: best.shared } : undefined
}
