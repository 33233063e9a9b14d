/**
 * Every field a generation request of OpenAI's, Ollama's and Anthropic's APIs may carry, and what llmspell
 * serve does with it, so that no field is silently dropped:
 * - `honoured`: it reaches the model (`as` names the `GenerateRequest` field or the behaviour);
 *   each backend then applies it or refuses it by name (Ollama has no logit bias, …);
 * - `no effect`: accepted, and nothing about the answer depends on it (a user id, metadata);
 * - `default only`: only the value that asks for what llmspell does anyway is accepted
 *   (`n: 1`, `logprobs: false`, `typical_p: 1`); any other is refused, saying why;
 * - `refused`: a 400 naming the field and why it cannot be honoured.
 * A field in no table is refused too (OpenAI answers an unknown argument the same way). `null`
 * counts as absent, as OpenAI's clients send it. The routes map the honoured fields; the tests
 * walk every row of every table.
 */
import * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import { decodeBody, HttpFailure } from "./Http.js"

/** What llmspell serve does with one request field. */
export type FieldRule =
  | { readonly kind: "honoured"; readonly as: string }
  | { readonly kind: "no effect"; readonly why: string }
  | { readonly kind: "default only"; readonly isDefault: (value: unknown) => boolean; readonly why: string }
  | { readonly kind: "refused"; readonly why: string }

/** A request's fields by name. */
export type FieldTable = Readonly<Record<string, FieldRule>>

const honoured = (as: string): FieldRule => ({ kind: "honoured", as })
const noEffect = (why: string): FieldRule => ({ kind: "no effect", why })
const defaultOnly = (isDefault: (value: unknown) => boolean, why: string): FieldRule => ({ kind: "default only", isDefault, why })
const refused = (why: string): FieldRule => ({ kind: "refused", why })

const is = (expected: unknown) => (value: unknown) => value === expected
const emptyList = (value: unknown) => Array.isArray(value) && value.length === 0

const NO_LOGPROBS = "token probabilities are not available: node-llama-cpp 3.22's chat generation does not expose them"
const LOAD_OPTION = "it is a model-load setting, which llmspell takes from the server's config (the provider's threads, gpu_layers, context_size), not from a request"

/** The extensions llama-server and vLLM accept on OpenAI's routes, which llmspell honours too. */
const SAMPLING_EXTENSIONS: FieldTable = {
  top_k: honoured("topK"),
  min_p: honoured("minP"),
  repeat_penalty: honoured("repeatPenalty"),
  repeat_last_n: honoured("repeatLastN")
}

/** What both OpenAI routes accept and ignore: they describe the caller, not the answer. */
const OPENAI_NO_EFFECT: FieldTable = {
  user: noEffect("an end-user id for the provider's abuse monitoring"),
  safety_identifier: noEffect("an end-user id for the provider's abuse monitoring"),
  metadata: noEffect("tags kept with a stored object; llmspell stores none"),
  prompt_cache_key: noEffect("llmspell reuses a prompt's cached prefix on its own"),
  prompt_cache_retention: noEffect("llmspell reuses a prompt's cached prefix on its own"),
  prompt_cache_options: noEffect("llmspell reuses a prompt's cached prefix on its own"),
  service_tier: noEffect("a local server has one tier")
}

/** `/v1/chat/completions` (openai 7.59's `ChatCompletionCreateParams`). */
export const OPENAI_CHAT_FIELDS: FieldTable = {
  model: honoured("the model spec"),
  messages: honoured("messages (a user message's image_url parts as images: data: URLs, http(s) URLs only when the server fetches image URLs, at most 16 of 20 MiB each)"),
  stream: honoured("streaming (server-sent events)"),
  stream_options: honoured("include_usage: a usage chunk at the end"),
  max_tokens: honoured("maxTokens"),
  max_completion_tokens: honoured("maxTokens"),
  temperature: honoured("temperature"),
  top_p: honoured("topP"),
  seed: honoured("seed"),
  stop: honoured("stop"),
  frequency_penalty: honoured("frequencyPenalty"),
  presence_penalty: honoured("presencePenalty"),
  logit_bias: honoured("logitBias"),
  tools: honoured("tools"),
  tool_choice: honoured("toolChoice"),
  parallel_tool_calls: honoured("parallelToolCalls"),
  response_format: honoured("responseFormat"),
  reasoning_effort: honoured("reasoning (\"none\" turns it off)"),
  ...SAMPLING_EXTENSIONS,
  ...OPENAI_NO_EFFECT,
  n: defaultOnly(is(1), "llmspell serve gives one choice per request"),
  logprobs: defaultOnly(is(false), NO_LOGPROBS),
  top_logprobs: defaultOnly(is(0), NO_LOGPROBS),
  store: defaultOnly(is(false), "llmspell serve keeps no completions to retrieve later"),
  modalities: defaultOnly((v) => Array.isArray(v) && v.length === 1 && v[0] === "text", "llmspell serve answers in text only"),
  verbosity: refused("no local model takes a verbosity setting"),
  audio: refused("llmspell serve answers in text only"),
  prediction: refused("predicted outputs are not supported"),
  web_search_options: refused("llmspell serve has no web search"),
  moderation: refused("llmspell serve has no moderation"),
  functions: refused("the deprecated function-calling fields are not supported; send tools"),
  function_call: refused("the deprecated function-calling fields are not supported; send tool_choice")
}

/**
 * What `include` may ask for on `/v1/responses`: reasoning items' encrypted content (reasoning
 * items come with their text, and `encrypted_content` null: nothing here is encrypted), and the
 * outputs of built-in tools and inputs, which never run or occur here. Token probabilities are
 * the one thing it could ask for that llmspell cannot give.
 */
const RESPONSES_INCLUDABLE = new Set([
  "reasoning.encrypted_content",
  "web_search_call.action.sources",
  "web_search_call.results",
  "code_interpreter_call.outputs",
  "computer_call_output.output.image_url",
  "file_search_call.results",
  "message.input_image.image_url"
])

/** `/v1/responses` (openai 7.59's `ResponseCreateParams`, and the fields Codex sends), served statelessly. */
export const OPENAI_RESPONSES_FIELDS: FieldTable = {
  model: honoured("the model spec"),
  input: honoured("messages (a user message's input_image parts as images: data: URLs, http(s) URLs only when the server fetches image URLs; function_call and function_call_output items become tool calls and results; reasoning items are accepted and not re-sent)"),
  instructions: honoured("a system message first"),
  stream: honoured("streaming (server-sent events)"),
  stream_options: noEffect("its one setting (include_obfuscation) pads events against side channels on the wire to OpenAI"),
  max_output_tokens: honoured("maxTokens"),
  temperature: honoured("temperature"),
  top_p: honoured("topP"),
  seed: honoured("seed (an extension: OpenAI's Responses API has none)"),
  frequency_penalty: honoured("frequencyPenalty (an extension)"),
  presence_penalty: honoured("presencePenalty (an extension)"),
  tools: honoured("tools (functions)"),
  tool_choice: honoured("toolChoice"),
  parallel_tool_calls: honoured("parallelToolCalls"),
  text: honoured("responseFormat (text.format)"),
  reasoning: honoured(
    "reasoning (effort \"none\" turns it off); the thinking comes back as a reasoning item's reasoning_text, no summary is made up"
  ),
  ...SAMPLING_EXTENSIONS,
  ...OPENAI_NO_EFFECT,
  client_metadata: noEffect("tags Codex sends about itself (installation id) for the provider's records"),
  store: noEffect("stateless: nothing is stored (the response says store: false), so a response cannot be fetched or continued"),
  include: defaultOnly(
    (v) => Array.isArray(v) && v.every((x) => typeof x === "string" && RESPONSES_INCLUDABLE.has(x)),
    `${NO_LOGPROBS}; accepted: reasoning.encrypted_content (reasoning items carry their text, encrypted_content null) and the outputs of built-in tools, which never run here`
  ),
  truncation: defaultOnly(is("disabled"), "llmspell never drops input to make it fit: a prompt too long is a 400"),
  top_logprobs: defaultOnly(is(0), NO_LOGPROBS),
  background: defaultOnly(is(false), "stateless: a response cannot run in the background"),
  previous_response_id: refused("llmspell serve stores no responses (as with store: false): send the whole conversation in input"),
  conversation: refused("stateless: send the whole conversation in input"),
  prompt: refused("stored prompt templates are not supported"),
  max_tool_calls: refused("a cap on built-in tool calls; llmspell serve runs no built-in tools"),
  background_options: refused("stateless: a response cannot run in the background"),
  context_management: refused("llmspell never drops or compacts input"),
  moderation: refused("llmspell serve has no moderation"),
  image: refused("llmspell serve answers in text only"),
  access_programs: refused("not supported")
}

const NOTHING_STORED = "stateless: send the whole conversation in messages"
const WHOLE_CONVERSATION = "llmspell never edits the conversation: every message sent reaches the model (the thinking of earlier turns excepted, " +
  "which a local model does not re-read), and a prompt over the context is a 400, never cut"

/** What Anthropic's two routes take alike: the prompt, and the hints about it. */
const ANTHROPIC_PROMPT_FIELDS: FieldTable = {
  model: honoured("the model spec, or a [serve.aliases] name"),
  messages: honoured("messages (text, base64 image blocks as images, url sources only when the server fetches image URLs (at most 16 of 20 MiB each), tool_use, tool_result; earlier thinking is dropped)"),
  system: honoured("a system message first"),
  tools: honoured("tools (custom ones; server tools cannot run here and are named in the llmspell-dropped-tools header)"),
  tool_choice: honoured("toolChoice (auto, any, tool, none) and disable_parallel_tool_use → parallelToolCalls: false"),
  thinking: honoured("reasoning (enabled: budget_tokens is reasoningBudget; disabled: off)"),
  output_config: honoured("format → responseFormat (a JSON Schema); effort has no effect"),
  output_format: honoured("responseFormat (a JSON Schema; the beta's name for output_config.format)"),
  cache_control: noEffect("the model's own cache reuses a prompt's prefix without being asked"),
  speed: noEffect("a local model runs at one speed"),
  context_management: noEffect(WHOLE_CONVERSATION),
  mcp_servers: defaultOnly(emptyList, "llmspell serve connects to no MCP servers: give their tools to the client, which runs them"),
  billing_policy: noEffect("nothing is billed here")
}

/** `POST /v1/messages` (@anthropic-ai/sdk 1.17's `MessageCreateParams`, with the beta's). */
export const ANTHROPIC_MESSAGES_FIELDS: FieldTable = {
  ...ANTHROPIC_PROMPT_FIELDS,
  max_tokens: honoured("maxTokens"),
  stream: honoured("streaming (server-sent events in Anthropic's order)"),
  stop_sequences: honoured("stop (stop_reason stop_sequence names the one met)"),
  temperature: honoured("temperature (0–1)"),
  top_p: honoured("topP"),
  top_k: honoured("topK"),
  metadata: noEffect("an end-user id for the provider's abuse monitoring"),
  service_tier: noEffect("a local server has one tier"),
  inference_geo: noEffect("the model runs on this server"),
  diagnostics: noEffect("llmspell reports no cache-miss reasons"),
  fallbacks: noEffect("a local model never declines a request for policy reasons, so no fallback model is ever tried"),
  fallback_credit_token: noEffect("nothing is billed here"),
  container: refused("llmspell serve runs no code-execution containers"),
  compaction: refused("llmspell serve does not summarise conversations: send the messages"),
  thread: refused(NOTHING_STORED)
}

/** `POST /v1/messages/count_tokens` (@anthropic-ai/sdk 1.17's `MessageCountTokensParams`, with the beta's). */
export const ANTHROPIC_COUNT_TOKENS_FIELDS: FieldTable = {
  ...ANTHROPIC_PROMPT_FIELDS,
  compaction: noEffect("the count is for the conversation in messages as sent (as Anthropic counts it)")
}

/** Top-level fields of `/api/chat` and `/api/generate` (ollama 0.6's `ChatRequest`, `GenerateRequest`). */
export const OLLAMA_FIELDS: FieldTable = {
  model: honoured("the model spec"),
  messages: honoured("messages (/api/chat)"),
  prompt: honoured("the user message (/api/generate)"),
  system: honoured("a system message first (/api/generate)"),
  stream: honoured("streaming (NDJSON)"),
  format: honoured("responseFormat"),
  options: honoured("sampling options (OLLAMA_OPTIONS)"),
  keep_alive: honoured("how long the model stays loaded"),
  think: honoured("reasoning"),
  tools: honoured("tools (/api/chat)"),
  images: honoured("the user message's images (/api/generate; base64, at most 16 of 20 MiB each): they reach Ollama and cloud models, a GGUF model refuses them"),
  raw: defaultOnly(is(false), "raw prompts are not supported: the model's chat template always applies (send raw: false, or use /api/chat)"),
  suffix: defaultOnly(is(""), "suffix (fill-in-the-middle) is not supported by llmspell serve"),
  template: defaultOnly(is(""), "a request's own template is not supported: the model's chat template applies"),
  context: defaultOnly(emptyList, "the deprecated context token array is not supported: send the conversation to /api/chat"),
  logprobs: defaultOnly(is(false), NO_LOGPROBS),
  top_logprobs: defaultOnly(is(0), NO_LOGPROBS),
  width: refused("image generation is not supported"),
  height: refused("image generation is not supported"),
  steps: refused("image generation is not supported")
}

/** `options` of `/api/chat` and `/api/generate` (ollama 0.6's `Options`). */
export const OLLAMA_OPTIONS: FieldTable = {
  num_predict: honoured("maxTokens (≤ 0: no limit)"),
  temperature: honoured("temperature"),
  top_k: honoured("topK"),
  top_p: honoured("topP"),
  min_p: honoured("minP"),
  seed: honoured("seed"),
  stop: honoured("stop"),
  num_ctx: honoured("contextSize (an Ollama model is run with it; a GGUF model keeps its instance's)"),
  repeat_penalty: honoured("repeatPenalty"),
  repeat_last_n: honoured("repeatLastN"),
  presence_penalty: honoured("presencePenalty"),
  frequency_penalty: honoured("frequencyPenalty"),
  typical_p: defaultOnly(is(1), "locally typical sampling is not available in node-llama-cpp"),
  tfs_z: defaultOnly(is(1), "tail-free sampling is not available (llama.cpp removed it)"),
  mirostat: defaultOnly(is(0), "Mirostat sampling is not available in node-llama-cpp"),
  mirostat_tau: noEffect("used by Mirostat only, which is off"),
  mirostat_eta: noEffect("used by Mirostat only, which is off"),
  penalize_newline: defaultOnly(is(false), "the repeat penalties never count newlines here"),
  num_keep: refused("llmspell never shifts the context, so there is nothing to keep"),
  num_batch: refused(LOAD_OPTION),
  num_gpu: refused(LOAD_OPTION),
  main_gpu: refused(LOAD_OPTION),
  num_thread: refused(LOAD_OPTION),
  use_mmap: refused(LOAD_OPTION),
  use_mlock: refused(LOAD_OPTION),
  numa: refused(LOAD_OPTION),
  low_vram: refused(LOAD_OPTION),
  f16_kv: refused(LOAD_OPTION),
  vocab_only: refused(LOAD_OPTION),
  logits_all: refused(LOAD_OPTION),
  embedding_only: refused(LOAD_OPTION)
}

/**
 * The first field of `body` the table does not let through, as a 400 message naming it
 * (`prefix` before the name: `options.`), or undefined when every field may pass.
 */
export const refusedField = (table: FieldTable, body: unknown, prefix = ""): string | undefined => {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined
  for (const [field, value] of Object.entries(body)) {
    if (value === null || value === undefined) continue
    const rule = Object.hasOwn(table, field) ? table[field]! : undefined
    const name = `${prefix}${field}`
    if (rule === undefined) return `${name} is not a field llmspell serve knows here; it was not ignored but refused, so no setting is silently dropped`
    if (rule.kind === "refused") return `${name} is not supported by llmspell serve: ${rule.why}`
    if (rule.kind === "default only" && !rule.isDefault(value)) {
      return `${name} ${JSON.stringify(value)?.slice(0, 40)} is not supported by llmspell serve: ${rule.why}`
    }
  }
  return undefined
}

/** Decodes a body, and answers every problem at once: the decode errors first, then a refused field. */
export const checkedBody = <A, I>(schema: Schema.Schema<A, I>, refused: string | undefined) => (raw: unknown) =>
  decodeBody(schema)(raw).pipe(
    Effect.mapError((e) => (refused !== undefined ? new HttpFailure(400, `${e.message}; ${refused}`) : e)),
    Effect.flatMap((decoded) => (refused !== undefined ? Effect.fail(new HttpFailure(400, refused)) : Effect.succeed(decoded)))
  )
