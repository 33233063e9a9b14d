/**
 * The page's side of the chat transcript (the contract is the Schema in src/domain/Transcript.ts,
 * which `llmspell chat` reads and writes). The page builds the Schema's own encoded type (a type
 * import: the compiler holds the page to the contract) but checks imported files with the small
 * checker below instead of bundling Effect's Schema, which would add ~60 KB gzipped to a ~30 KB
 * page; test/uiTranscript.test.ts holds the two to the same verdicts. Also: a transcript as
 * OpenAI chat messages, the page's stored conversations. Pure.
 */
import type { Transcript as TranscriptSchema } from "../../domain/Transcript.js"

/** The transcript as JSON (the Schema's encoded side). */
export type TranscriptJson = typeof TranscriptSchema.Encoded
/** One turn. */
export type TranscriptMessageJson = TranscriptJson["messages"][number]
/** Its parameters. */
export type TranscriptParametersJson = NonNullable<TranscriptJson["parameters"]>
/** An image reference. */
export type ImageRefJson = NonNullable<TranscriptMessageJson["images"]>[number]
/** An image whose bytes are inline (what the page attaches). */
export type InlineImageJson = Extract<ImageRefJson, { readonly data: string }>

/** The version the page writes and reads. */
export const TRANSCRIPT_VERSION = 1

const FINISH_REASONS = ["stop", "length", "tool-calls", "abort", "error", "unknown"]

type Json = Record<string, unknown>
const isRecord = (x: unknown): x is Json => typeof x === "object" && x !== null && !Array.isArray(x)
const optional = (o: Json, key: string, check: (v: unknown) => boolean) => !(key in o) || o[key] === undefined || check(o[key])
const isString = (v: unknown) => typeof v === "string"
const isCount = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 0
const isNonNegative = (v: unknown) => typeof v === "number" && !Number.isNaN(v) && v >= 0

const checkParameters = (p: unknown): string | undefined => {
  if (!isRecord(p)) return "parameters must be an object"
  const checks: Array<[string, (v: unknown) => boolean, string]> = [
    ["temperature", (v) => typeof v === "number" && Number.isFinite(v) && v >= 0, "a finite number ≥ 0"],
    ["maxTokens", (v) => Number.isSafeInteger(v) && (v as number) >= 1, "an integer ≥ 1"],
    ["seed", (v) => Number.isSafeInteger(v), "an integer"],
    ["topP", (v) => typeof v === "number" && v > 0 && v <= 1, "a number in (0, 1]"],
    ["topK", (v) => Number.isSafeInteger(v) && (v as number) >= 0, "an integer ≥ 0"],
    ["reasoning", (v) => typeof v === "boolean", "true or false"],
    [
      "responseFormat",
      (v) => v === "text" || v === "json" || (isRecord(v) && isRecord(v["schema"]) && optional(v, "name", isString)),
      `"text", "json" or { schema }`
    ],
    [
      "tools",
      (v) => Array.isArray(v) && v.every((t) => isRecord(t) && typeof t["name"] === "string" && /^[A-Za-z0-9_.-]{1,64}$/.test(t["name"]) && optional(t, "description", isString) && isRecord(t["parameters"])),
      "a list of { name, description?, parameters }"
    ]
  ]
  for (const [key, check, what] of checks) if (!optional(p, key, check)) return `parameters.${key} must be ${what}`
  const names = Array.isArray(p["tools"]) ? (p["tools"] as Array<Json>).map((t) => t["name"]) : []
  if (names.some((name, i) => names.indexOf(name) !== i)) return "parameters.tools: two tools have the same name"
  return undefined
}

const checkImage = (image: unknown): boolean =>
  isRecord(image) &&
  (typeof image["data"] === "string"
    ? typeof image["mediaType"] === "string" && /^image\/[a-z0-9.+-]+$/.test(image["mediaType"]) && optional(image, "name", isString)
    : typeof image["path"] === "string" && optional(image, "mediaType", isString))

const checkMessage = (m: unknown, at: string): string | undefined => {
  if (!isRecord(m)) return `${at} must be an object`
  if (m["role"] !== "user" && m["role"] !== "assistant" && m["role"] !== "tool") return `${at}.role must be "user", "assistant" or "tool"`
  if (typeof m["content"] !== "string") return `${at}.content must be a string`
  for (const key of ["reasoning", "toolCallId", "toolName", "model"]) if (!optional(m, key, isString)) return `${at}.${key} must be a string`
  if (!optional(m, "toolCalls", (v) => Array.isArray(v) && v.every((c) => isRecord(c) && isString(c["id"]) && isString(c["name"])))) {
    return `${at}.toolCalls must be a list of { id, name, params }`
  }
  if (!optional(m, "images", (v) => Array.isArray(v) && v.every(checkImage))) return `${at}.images must be a list of { mediaType, data } or { path }`
  if (!optional(m, "finishReason", (v) => FINISH_REASONS.includes(v as string))) return `${at}.finishReason must be one of ${FINISH_REASONS.join(", ")}`
  if (!optional(m, "figures", (f) =>
    isRecord(f) &&
    ["timeToFirstTokenMs", "tokensPerSecond", "totalMs"].every((k) => optional(f, k, isNonNegative)) &&
    ["promptTokens", "cachedPromptTokens", "completionTokens"].every((k) => optional(f, k, isCount))
  )) return `${at}.figures must hold non-negative numbers (whole ones for token counts)`
  const present = (key: string) => m[key] !== undefined
  if (m["role"] === "tool" && !present("toolCallId")) return `${at}: a tool message needs the toolCallId of the call it answers`
  if (m["role"] !== "assistant" && ["toolCalls", "reasoning", "figures", "finishReason"].some(present)) {
    return `${at}: only an assistant message carries toolCalls, reasoning, finishReason or figures`
  }
  if (m["role"] !== "user" && present("images")) return `${at}: only a user message carries images`
  return undefined
}

/** The first thing that keeps `json` from being a transcript, or undefined when it is one. */
export const checkTranscript = (json: unknown): string | undefined => {
  if (!isRecord(json)) return "a transcript is a JSON object"
  if (typeof json["version"] === "number" && json["version"] > TRANSCRIPT_VERSION) {
    return `this transcript is version ${json["version"]}; this page reads version ${TRANSCRIPT_VERSION} (a newer llmspell wrote it)`
  }
  if (json["version"] !== TRANSCRIPT_VERSION) return `version must be ${TRANSCRIPT_VERSION}`
  if (typeof json["model"] !== "string") return "model must be a string (a model spec)"
  for (const key of ["title", "createdAt", "system"]) if (!optional(json, key, isString)) return `${key} must be a string`
  if (json["parameters"] !== undefined) {
    const problem = checkParameters(json["parameters"])
    if (problem !== undefined) return problem
  }
  if (!Array.isArray(json["messages"])) return "messages must be a list"
  for (let i = 0; i < json["messages"].length; i++) {
    const problem = checkMessage(json["messages"][i], `messages[${i}]`)
    if (problem !== undefined) return problem
  }
  return undefined
}

/** A transcript file's text as a transcript, or what is wrong with it. */
export const parseTranscript = (text: string): { readonly ok: true; readonly transcript: TranscriptJson } | { readonly ok: false; readonly error: string } => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return { ok: false, error: `not JSON: ${e instanceof Error ? e.message : String(e)}` }
  }
  const problem = checkTranscript(json)
  return problem === undefined ? { ok: true, transcript: json as TranscriptJson } : { ok: false, error: problem }
}

/** A new, empty transcript. */
export const emptyTranscript = (model: string, now: Date): TranscriptJson => ({
  version: TRANSCRIPT_VERSION,
  model,
  createdAt: now.toISOString(),
  messages: []
})

/** The transcript's title: its own, else the start of its first user message. */
export const titleOf = (t: TranscriptJson): string => {
  if (t.title !== undefined && t.title.trim() !== "") return t.title
  const first = t.messages.find((m) => m.role === "user")?.content.trim().replace(/\s+/g, " ")
  return first === undefined || first === "" ? "New conversation" : first.length > 48 ? `${first.slice(0, 48)}…` : first
}

/** A file name for an exported transcript. */
export const exportFileName = (t: TranscriptJson): string => {
  const slug = titleOf(t).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 40) || "conversation"
  return `llmspell-chat-${slug}.json`
}

/** An OpenAI chat-completions message. */
export type WireMessage =
  | { role: "system"; content: string }
  | { role: "user"; content: string | Array<{ type: "text"; text: string } | { type: "image_url"; image_url: { url: string } }> }
  | { role: "assistant"; content: string; tool_calls?: Array<{ id: string; type: "function"; function: { name: string; arguments: string } }> }
  | { role: "tool"; content: string; tool_call_id: string }

/**
 * The transcript as OpenAI messages: the system prompt first; a user turn's inline images as
 * `image_url` parts with `data:` URLs (a `path` reference is not the page's to read, so it is left out).
 */
export const toWireMessages = (t: TranscriptJson): Array<WireMessage> => {
  const out: Array<WireMessage> = t.system !== undefined && t.system.trim() !== "" ? [{ role: "system", content: t.system }] : []
  for (const m of t.messages) {
    if (m.role === "user") {
      const images = (m.images ?? []).flatMap((image) => ("data" in image ? [`data:${image.mediaType};base64,${image.data}`] : []))
      out.push({
        role: "user",
        content: images.length === 0
          ? m.content
          : [{ type: "text", text: m.content }, ...images.map((url) => ({ type: "image_url" as const, image_url: { url } }))]
      })
    } else if (m.role === "assistant") {
      out.push({
        role: "assistant",
        content: m.content,
        ...(m.toolCalls !== undefined && m.toolCalls.length > 0
          ? {
            tool_calls: m.toolCalls.map((c) => ({
              id: c.id,
              type: "function" as const,
              function: { name: c.name, arguments: typeof c.params === "string" ? c.params : JSON.stringify(c.params ?? {}) }
            }))
          }
          : {})
      })
    } else {
      out.push({ role: "tool", content: m.content, tool_call_id: m.toolCallId ?? "" })
    }
  }
  return out
}

/** The request fields of the transcript's parameters, in OpenAI's terms. */
export const toWireParameters = (p: TranscriptParametersJson | undefined): Record<string, unknown> => {
  if (p === undefined) return {}
  const format = p.responseFormat
  return {
    ...(p.temperature !== undefined ? { temperature: p.temperature } : {}),
    ...(p.maxTokens !== undefined ? { max_tokens: p.maxTokens } : {}),
    ...(p.seed !== undefined ? { seed: p.seed } : {}),
    ...(p.topP !== undefined ? { top_p: p.topP } : {}),
    ...(p.reasoning !== undefined ? { reasoning_effort: p.reasoning ? "medium" : "none" } : {}),
    ...(format === "json"
      ? { response_format: { type: "json_object" } }
      : typeof format === "object"
      ? { response_format: { type: "json_schema", json_schema: { name: format.name ?? "answer", schema: format.schema, strict: true } } }
      : {}),
    ...(p.tools !== undefined && p.tools.length > 0
      ? {
        tools: p.tools.map((tool) => ({
          type: "function",
          function: { name: tool.name, ...(tool.description !== undefined ? { description: tool.description } : {}), parameters: tool.parameters }
        }))
      }
      : {})
  }
}

/** A conversation kept in the browser: the transcript, with an id and when it last changed. */
export interface Conversation {
  readonly id: string
  readonly updatedAt: number
  readonly transcript: TranscriptJson
}

/** The conversations in the browser's storage, from its stored text (damaged entries are dropped, not fatal). */
export const readConversations = (text: string | null): Array<Conversation> => {
  if (text === null) return []
  try {
    const stored = JSON.parse(text) as unknown
    if (!isRecord(stored) || !Array.isArray(stored["conversations"])) return []
    return stored["conversations"].filter((c): c is Conversation =>
      isRecord(c) && typeof c["id"] === "string" && typeof c["updatedAt"] === "number" && checkTranscript(c["transcript"]) === undefined
    )
  } catch {
    return []
  }
}

/** The conversations as the stored text. */
export const writeConversations = (conversations: ReadonlyArray<Conversation>): string =>
  JSON.stringify({ version: 1, conversations })

/**
 * The conversation with its images' bytes left out, each named in its place (`{ path: name }`, as
 * a transcript of `llmspell chat` refers to a file): what the browser keeps when the bytes do not
 * fit its storage, so the turns survive a reload.
 */
export const withoutImageBytes = (c: Conversation): Conversation => {
  if (!c.transcript.messages.some((m) => (m.images ?? []).some((i) => "data" in i))) return c
  return {
    ...c,
    transcript: {
      ...c.transcript,
      messages: c.transcript.messages.map((m) =>
        m.images === undefined ? m : { ...m, images: m.images.map((i) => ("data" in i ? { path: i.name ?? "image", mediaType: i.mediaType } : i)) }
      )
    }
  }
}

/**
 * The stored text that fits: all the conversations whole, else with the images' bytes left out
 * of the conversation holding the most first, until `fits` accepts one (so one huge image does not
 * cost the small ones elsewhere); `lean` says whether any was left out. `fits` writes (and answers
 * false when the storage is full).
 */
export const keepConversations = (
  conversations: ReadonlyArray<Conversation>,
  fits: (text: string) => boolean
): { readonly kept: boolean; readonly lean: boolean } => {
  if (fits(writeConversations(conversations))) return { kept: true, lean: false }
  const imageChars = (c: Conversation) =>
    c.transcript.messages.reduce((n, m) => n + (m.images ?? []).reduce((k, i) => k + ("data" in i ? i.data.length : 0), 0), 0)
  const heaviestFirst = conversations.map((c, i) => ({ c, i, chars: imageChars(c) })).sort((a, b) => b.chars - a.chars)
  const current = [...conversations]
  for (const { c, i } of heaviestFirst) {
    const lean = withoutImageBytes(c)
    if (lean === c) continue
    current[i] = lean
    if (fits(writeConversations(current))) return { kept: true, lean: true }
  }
  return { kept: false, lean: true }
}
