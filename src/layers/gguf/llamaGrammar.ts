/**
 * The grammars of constrained GGUF generation (`Grammar` plans of `JsonSchemaGrammar.ts`), built
 * with node-llama-cpp's JSON-schema grammar and narrowed where it is too loose for us (string
 * characters, free-form keys), cached per loader by schema; and the tokens a grammar-constrained
 * generation must never produce, as one `TokenBias` per model.
 */
import * as Effect from "effect/Effect"
import type { LlamaGrammar, LlamaModel, Token, TokenBias } from "node-llama-cpp"
import type { BackendError } from "../../domain/Errors.js"
import type { GenerationPlan } from "./JsonSchemaGrammar.js"
import { type LogBuffer, type NodeLlamaCpp, toBackendError } from "./llamaRuntime.js"

/** The operation of a `BackendError` for a grammar llama.cpp refused (the servers answer it as the schema's fault). */
export const GRAMMAR_OPERATION = "create the JSON schema grammar"

/** Grammars by schema, per loader: creating one parses the schema and builds the GBNF text each time. */
const GRAMMAR_CACHE_SIZE = 32

/**
 * node-llama-cpp's JSON string character rule, narrowed to the Basic Multilingual Plane without
 * surrogates: a code point above U+FFFF is one character to the grammar and to JSON Schema but two
 * to JavaScript's `length`, which Effect's `maxLength`/`length` filters count, so a bounded string
 * could pass the grammar and fail decoding. Such characters can still be written as `\u` escape pairs.
 */
const STRING_CHAR_RULE = String.raw`string-char-rule ::= [^"\\\x7F\x00-\x1F\uD800-\uDFFF\U00010000-\U0010FFFF] | "\\" ["\\/bfnrt] | "\\u" [0-9a-fA-F]{4}`

/**
 * The unbounded string rule: after `JsonSchemaGrammar` bounded every string value, node-llama-cpp
 * still uses it for the keys of free-form objects (records, `additionalProperties`), which a weak
 * model could otherwise keep writing until `maxTokens`.
 */
const KEY_RULE = String.raw`string-rule ::= "\"" ( string-char-rule ){0,64} "\""`

/**
 * node-llama-cpp 3.22 lets an integer carry an exponent (`0E9949494997497990` is an "integer" to
 * it: valid JSON, 0.0 to Python, a float to most readers): an integer is digits without leading
 * zeros, nothing else.
 */
const INTEGER_RULE = String.raw`integer-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15})`

/**
 * A number keeps its fraction and exponent, but an exponent of at most two digits without leading
 * zeros: node-llama-cpp allows 16 (`1E9999999999999999` is Infinity to JavaScript, which then
 * writes it back as `null`).
 */
const NUMBER_RULE = String.raw`fractional-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [1-9] [0-9]?)?`

/**
 * node-llama-cpp's JSON grammar as llmspell generates with it: narrower strings, keys and numbers
 * (above), and compact. node-llama-cpp lets the model indent (a newline and 4 spaces per level,
 * or a space after `:` and `,`), which spends the token budget on whitespace, and ends the root
 * with four newlines it then stops on (`stopGenerationTriggers`): here no whitespace is allowed
 * between tokens, and the document ends at its last character, where llama.cpp's grammar allows
 * only an end-of-generation token (one token instead of up to four). Rule names are
 * node-llama-cpp's (`gbnfJson/terminals/gbnfConsts.js`); the grammar tests pin them.
 */
export const narrowJsonGrammar = (gbnf: string): string =>
  gbnf
    .replace(/^string-char-rule ::= .*$/m, STRING_CHAR_RULE)
    .replace(/^string-rule ::= .*$/m, KEY_RULE)
    .replace(/^integer-number-rule ::= .*$/m, INTEGER_RULE)
    .replace(/^fractional-number-rule ::= .*$/m, NUMBER_RULE)
    .replace(/^(comma-whitespace-[a-z0-9-]+-rule) ::= .*$/gm, `$1 ::= ","`)
    .replace(/^(whitespace-[a-z0-9-]+-rule) ::= .*$/gm, `$1 ::= ""`)
    .replace(/\[ \]\?/g, `""`)
    .replace(/^(root ::= .*) "\\n\\n\\n\\n" \[\\n\]\*$/m, "$1")

/**
 * llama.cpp's grammar decodes byte-fallback tokens (`<0xC1>`, …) one byte at a time and checks
 * continuation bytes, but not overlong forms: `<0xC1><0x81>` is "A" to the grammar and two
 * replacement characters once detokenized, so a string could break its length bound. Under a
 * grammar, SentencePiece byte tokens that only start overlong or never-valid sequences are banned:
 * C0, C1, F5–FF (never valid), E0 and F0 (their overlong forms; what they start validly — U+0800–
 * U+0FFF, and the astral plane the string rule excludes — comes from merged tokens or escapes).
 * Byte-level BPE vocabularies have no such tokens; anything left is caught by the answer check.
 */
const OVERLONG_LEAD_BYTES = [0xc0, 0xc1, 0xe0, ...Array.from({ length: 16 }, (_, i) => 0xf0 + i)]
const bannedTokens = new WeakMap<LlamaModel, ReadonlyArray<Token>>()
/** The banned tokens as one TokenBias per model (built once, not per request). */
const biases = new WeakMap<LlamaModel, TokenBias | undefined>()
export const grammarBias = (lib: NodeLlamaCpp, model: LlamaModel): TokenBias | undefined => {
  if (!biases.has(model)) {
    const banned = grammarBannedTokens(model)
    biases.set(model, banned.length > 0 ? new lib.TokenBias(model.tokenizer).set([...banned], "never") : undefined)
  }
  return biases.get(model)
}

/**
 * Tokens a grammar-constrained generation must not produce: the byte tokens above, and special
 * tokens other than end-of-generation. The grammar matches a control token by its text (`<s>` is
 * three characters to it) but the detokenized answer drops it, so a 3-character string could come
 * out empty. Computed once per model (one pass over the vocabulary, at the first constrained request).
 */
export const grammarBannedTokens = (model: LlamaModel): ReadonlyArray<Token> => {
  let tokens = bannedTokens.get(model)
  if (tokens === undefined) {
    const vocabulary = (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown } } }).tokenizer?.ggml?.tokens
    const bytes = Array.isArray(vocabulary)
      ? OVERLONG_LEAD_BYTES.map((b) => vocabulary.indexOf(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`)).filter((id) => id >= 0)
      : []
    const special: Array<Token> = []
    for (const token of model.iterateAllTokens()) {
      if (model.isSpecialToken(token) && !model.isEogToken(token)) special.push(token)
    }
    tokens = [...(bytes as Array<Token>), ...special]
    bannedTokens.set(model, tokens)
  }
  return tokens
}

/** The grammars of one loader: `grammarFor` builds a plan's grammar once per schema (LRU of GRAMMAR_CACHE_SIZE). */
export const makeGrammarCache = (logs: LogBuffer) => {
  const grammars = new Map<string, Promise<LlamaGrammar>>()
  /** The grammar of a plan (cached by schema), or none for free text and node-llama-cpp's own function calling. */
  const grammarFor = (model: LlamaModel, plan: GenerationPlan): Effect.Effect<LlamaGrammar | undefined, BackendError> => {
    if (plan._tag !== "Grammar") return Effect.succeed(undefined)
    const mark = logs.mark
    return Effect.tryPromise({
      try: () => {
        const key = JSON.stringify(plan.schema)
        let p = grammars.get(key)
        if (p === undefined) {
          p = (async () => {
            const json = await model.llama.createGrammarForJsonSchema(plan.schema as never) as LlamaGrammar
            // no stop triggers: the narrowed root ends at the document's last character
            return model.llama.createGrammar({ grammar: narrowJsonGrammar(json.grammar), trimWhitespaceSuffix: true })
          })()
          p.catch(() => grammars.delete(key))
          if (grammars.size >= GRAMMAR_CACHE_SIZE) grammars.delete(grammars.keys().next().value!)
        } else grammars.delete(key) // re-inserted below: most recently used last
        grammars.set(key, p)
        return p
      },
      // llama.cpp says why it refused a grammar only in its log ("exceeds sane defaults", …)
      catch: (e) => toBackendError(GRAMMAR_OPERATION, undefined, logs.since(mark))(e)
    })
  }

  return grammarFor
}
