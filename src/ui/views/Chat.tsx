/**
 * Chat: a playground over OpenAI's /v1/chat/completions (streamed, with the usage chunk).
 * Conversations are transcripts (src/domain/Transcript.ts) kept in localStorage, exported and
 * imported as the same JSON `llmspell chat` saves. Each answer shows its reasoning collapsed, its
 * tool calls (a result can be typed in, and the model continues), and its figures: time to first
 * token as this page saw it, tokens/s, prompt / cached / completion tokens from the usage. Stop
 * aborts the request, which stops the generation on the server; what was written is kept.
 */
import { useEffect, useMemo, useRef, useState } from "preact/hooks"
import { ApiError, errorMessage, request } from "../api.js"
import { ErrorLine, ModelText } from "../components.js"
import { type Answer, answerFigures, applyChunk, endAnswer, finishReasonOf, startAnswer, toolCallParams } from "../lib/chatStream.js"
import { formatCount, formatDuration } from "../lib/format.js"
import { sseEvents } from "../lib/streams.js"
import {
  type Conversation,
  emptyTranscript,
  exportFileName,
  type InlineImageJson,
  keepConversations,
  parseTranscript,
  readConversations,
  titleOf,
  type TranscriptJson,
  type TranscriptMessageJson,
  type TranscriptParametersJson,
  toWireMessages,
  toWireParameters
} from "../lib/transcript.js"
import type { ModelsReply, UiModel } from "../types.js"
import { imageSize } from "../../domain/ImageSize.js"
import { useCapabilities } from "./Models.js"

const STORE_KEY = "llmspell.chat.v1"
const MARKDOWN_KEY = "llmspell.chat.markdown"
const MAX_IMAGES = 8
const MAX_IMAGE_BYTES = 8 * 1024 * 1024

const storage = {
  get: (key: string): string | null => {
    try {
      return localStorage.getItem(key)
    } catch {
      return null
    }
  },
  set: (key: string, value: string): string | undefined => {
    try {
      localStorage.setItem(key, value)
      return undefined
    } catch (e) {
      return e instanceof DOMException && e.name === "QuotaExceededError"
        ? "The browser's storage is full: export old conversations and delete them (images take the most room)."
        : "The browser does not let this page keep conversations; export them to keep them."
    }
  }
}

const newId = () => Array.from(crypto.getRandomValues(new Uint8Array(9)), (b) => b.toString(16).padStart(2, "0")).join("")

type Figures = NonNullable<TranscriptMessageJson["figures"]>

function FiguresLine({ figures }: { readonly figures: Figures | undefined }) {
  if (figures === undefined) return null
  const parts: Array<[string, string]> = []
  if (figures.timeToFirstTokenMs !== undefined) parts.push(["ttft", `TTFT ${formatDuration(figures.timeToFirstTokenMs)}`])
  if (figures.tokensPerSecond !== undefined) parts.push(["rate", `${figures.tokensPerSecond.toFixed(1)} tok/s`])
  if (figures.promptTokens !== undefined) parts.push(["prompt", `prompt ${formatCount(figures.promptTokens)}`])
  if (figures.cachedPromptTokens !== undefined) parts.push(["cached", `cached ${formatCount(figures.cachedPromptTokens)}`])
  if (figures.completionTokens !== undefined) parts.push(["completion", `${formatCount(figures.completionTokens)} tokens`])
  if (parts.length === 0) return null
  return (
    <p class="figures">
      {parts.map(([name, text]) => <span key={name} data-figure={name}>{text}</span>)}
    </p>
  )
}

function ToolCallCard(props: {
  readonly call: { readonly id: string; readonly name: string; readonly params: unknown }
  readonly answerable: boolean
  readonly onResult: (result: string) => void
}) {
  const [result, setResult] = useState("")
  return (
    <div class="tool-call" data-tool={props.call.name}>
      <div>Tool call <code>{props.call.name}</code> <span class="muted small">{props.call.id}</span></div>
      <pre class="code"><code>{typeof props.call.params === "string" ? props.call.params : JSON.stringify(props.call.params, null, 2)}</code></pre>
      {props.answerable
        ? (
          <form
            class="stack"
            onSubmit={(e) => {
              e.preventDefault()
              props.onResult(result)
              setResult("")
            }}
          >
            <label>
              Result of {props.call.name}
              <textarea rows={2} value={result} onInput={(e) => setResult(e.currentTarget.value)} />
            </label>
            <div class="actions"><button type="submit">Send result</button></div>
          </form>
        )
        : null}
    </div>
  )
}

function AssistantMessage(props: {
  readonly content: string
  readonly reasoning: string | undefined
  readonly toolCalls: ReadonlyArray<{ readonly id: string; readonly name: string; readonly params: unknown }>
  readonly finishReason: string | undefined
  readonly figures: Figures | undefined
  readonly model: string | undefined
  readonly streaming: boolean
  readonly markdown: boolean
  readonly answerable: (id: string) => boolean
  readonly onToolResult: (call: { readonly id: string; readonly name: string }, result: string) => void
}) {
  return (
    <li class={`msg assistant${props.streaming ? " streaming" : ""}`} data-finish={props.finishReason}>
      <div class="who">Assistant{props.model !== undefined ? <span class="muted small"> · {props.model}</span> : null}</div>
      {props.reasoning !== undefined && props.reasoning !== ""
        ? (
          <details class="reasoning">
            <summary>{props.streaming && props.content === "" ? "Thinking…" : "Reasoning"}</summary>
            <div class="plain">{props.reasoning}</div>
          </details>
        )
        : null}
      {props.content !== "" ? <ModelText text={props.content} markdown={props.markdown} /> : null}
      {props.streaming && props.content === "" && props.toolCalls.length === 0 && (props.reasoning ?? "") === "" ? <p class="muted">Waiting for the first token…</p> : null}
      {props.toolCalls.map((call) => (
        <ToolCallCard key={call.id} call={call} answerable={props.answerable(call.id)} onResult={(result) => props.onToolResult(call, result)} />
      ))}
      {props.finishReason === "abort" ? <p class="badge stopped">Stopped</p> : null}
      {props.finishReason === "length" ? <p class="badge">Cut at the token limit</p> : null}
      <FiguresLine figures={props.figures} />
    </li>
  )
}

/** The Chat view. */
export function ChatView(props: {
  readonly models: ModelsReply | undefined
  readonly refreshModels: () => Promise<void>
  readonly requestedModel: { readonly spec: string; readonly n: number } | undefined
  readonly active: boolean
}) {
  const [conversations, setConversations] = useState<ReadonlyArray<Conversation>>(() => readConversations(storage.get(STORE_KEY)))
  const [currentId, setCurrentId] = useState<string | undefined>(() => conversations[0]?.id)
  const [pickedModel, setPickedModel] = useState<string | undefined>(undefined)
  const [draft, setDraft] = useState("")
  const [images, setImages] = useState<ReadonlyArray<InlineImageJson>>([])
  const [streaming, setStreaming] = useState<{ readonly answer: Answer; readonly controller: AbortController } | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const [storageError, setStorageError] = useState<string | undefined>(undefined)
  const [markdown, setMarkdown] = useState(storage.get(MARKDOWN_KEY) !== "off")
  const [schemaText, setSchemaText] = useState("")
  const [toolsText, setToolsText] = useState("")
  const [deleting, setDeleting] = useState<string | undefined>(undefined)
  const importInput = useRef<HTMLInputElement>(null)
  const imageInput = useRef<HTMLInputElement>(null)
  const composer = useRef<HTMLTextAreaElement>(null)
  const capabilities = useCapabilities(props.models?.models, props.active)

  const current = conversations.find((c) => c.id === currentId)
  const transcript = current?.transcript

  // kept whole when they fit; else the images' bytes are left out (the heaviest conversation's
  // first) so no turn is lost on a reload, and the page says so
  useEffect(() => {
    let refusal: string | undefined
    const { kept, lean } = keepConversations(conversations, (text) => {
      refusal = storage.set(STORE_KEY, text)
      return refusal === undefined
    })
    setStorageError(
      !kept
        ? refusal
        : lean
        ? "The browser's storage is full: conversations are kept without some images (each is named in its place); export a conversation to keep its images."
        : undefined
    )
  }, [conversations])

  // the settings' text fields follow the conversation shown
  useEffect(() => {
    const format = transcript?.parameters?.responseFormat
    setSchemaText(typeof format === "object" ? JSON.stringify(format.schema, null, 2) : "")
    setToolsText(transcript?.parameters?.tools !== undefined ? JSON.stringify(transcript.parameters.tools, null, 2) : "")
  }, [currentId])

  const chatModels = useMemo(() => {
    const all = (props.models?.models ?? []).filter((m) => {
      const caps = capabilities(m)
      return caps === undefined || !caps.includes("embedding") || caps.includes("completion")
    })
    return [...all].sort((a, b) => Number(b.loaded) - Number(a.loaded) || a.spec.localeCompare(b.spec))
  }, [props.models, capabilities])

  const model = transcript?.model ?? pickedModel ?? chatModels[0]?.spec
  const modelEntry: UiModel | undefined = props.models?.models.find((m) => m.spec === model)
  // images are offered unless the model's capabilities are known and lack vision (unknown: the
  // server decides, and says so if it cannot)
  const modelCapabilities = modelEntry !== undefined ? capabilities(modelEntry) : undefined
  const canAttach = modelCapabilities === undefined || modelCapabilities.includes("vision")

  const save = (id: string, t: TranscriptJson) =>
    setConversations((all) => all.map((c) => (c.id === id ? { ...c, transcript: t, updatedAt: Date.now() } : c)))

  /** Adds a turn to the conversation as it is now (its settings may have changed while the answer streamed). */
  const append = (id: string, message: TranscriptMessageJson) =>
    setConversations((all) =>
      all.map((c) => (c.id === id ? { ...c, transcript: { ...c.transcript, messages: [...c.transcript.messages, message] }, updatedAt: Date.now() } : c))
    )

  const create = (spec: string, t?: TranscriptJson): string => {
    const id = newId()
    setConversations((all) => [{ id, updatedAt: Date.now(), transcript: t ?? emptyTranscript(spec, new Date()) }, ...all])
    setCurrentId(id)
    setError(undefined)
    return id
  }

  // "Chat" on a model in the Models view: an empty conversation takes the model, else a new one starts
  useEffect(() => {
    if (props.requestedModel === undefined) return
    const spec = props.requestedModel.spec
    if (current !== undefined && current.transcript.messages.length === 0) save(current.id, { ...current.transcript, model: spec })
    else create(spec)
  }, [props.requestedModel])

  const changeModel = (spec: string) => {
    if (current === undefined) return setPickedModel(spec)
    const t = current.transcript
    // earlier answers keep the name of the model that gave them
    save(current.id, { ...t, model: spec, messages: t.messages.map((m) => (m.role === "assistant" && m.model === undefined ? { ...m, model: t.model } : m)) })
  }

  const setParameters = (change: Partial<TranscriptParametersJson>) => {
    const id = current?.id ?? create(model ?? "")
    const base = current?.transcript ?? emptyTranscript(model ?? "", new Date())
    const merged: Record<string, unknown> = { ...base.parameters, ...change }
    for (const key of Object.keys(merged)) if (merged[key] === undefined) delete merged[key]
    save(id, { ...base, parameters: merged as TranscriptParametersJson })
  }

  /**
   * A turn the server refused before any answer (a 400 for an image the model cannot see, a bad
   * parameter, a missing key): taken out of the conversation and given back to the composer, its
   * text before whatever was typed since and its images before any attached since, so nothing is
   * lost and it can be sent again, to another model or changed.
   */
  const giveBack = (id: string, turn: TranscriptMessageJson) => {
    setConversations((all) =>
      all.map((c) =>
        c.id === id && c.transcript.messages.at(-1) === turn
          ? { ...c, transcript: { ...c.transcript, messages: c.transcript.messages.slice(0, -1) }, updatedAt: Date.now() }
          : c
      )
    )
    setDraft((typed) => (typed.trim() === "" ? turn.content : `${turn.content}\n${typed}`))
    const inline = (turn.images ?? []).flatMap((img) => ("data" in img ? [img] : []))
    if (inline.length > 0) setImages((all) => [...inline, ...all].slice(0, MAX_IMAGES))
  }

  const generate = async (id: string, t: TranscriptJson) => {
    const controller = new AbortController()
    // the user's turn this request sends, given back to the composer if the server refuses it
    const last = t.messages.at(-1)
    const turn = last?.role === "user" ? last : undefined
    let answer = startAnswer(performance.now())
    setStreaming({ answer, controller })
    setError(undefined)
    try {
      const response = await request("/v1/chat/completions", {
        method: "POST",
        signal: controller.signal,
        json: { model: t.model, messages: toWireMessages(t), stream: true, stream_options: { include_usage: true }, ...toWireParameters(t.parameters) }
      })
      if (!response.ok || response.body === null) {
        setError(response.ok ? "The server sent no answer." : await errorMessage(response))
        if (!response.ok && turn !== undefined) giveBack(id, turn)
        return setStreaming(undefined)
      }
      for await (const event of sseEvents(response.body)) {
        if (event.data === "[DONE]") break
        let chunk: unknown
        try {
          chunk = JSON.parse(event.data)
        } catch {
          continue
        }
        answer = applyChunk(answer, chunk, performance.now())
        setStreaming({ answer, controller })
        if (answer.error !== undefined) break
      }
      answer = endAnswer(answer, performance.now(), answer.error !== undefined ? "error" : undefined)
    } catch (e) {
      if (controller.signal.aborted) answer = endAnswer(answer, performance.now(), "abort")
      else {
        answer = { ...endAnswer(answer, performance.now(), "error"), error: e instanceof ApiError && e.status === 401 ? "The server asks for the API key." : (e as Error).message }
        if (turn !== undefined && answer.content === "" && answer.reasoning === "" && answer.toolCalls.length === 0) giveBack(id, turn)
      }
    }
    if (answer.error !== undefined) setError(answer.error)
    const toolCalls = answer.toolCalls.map((c, i) => ({ id: c.id ?? `call_${i}`, name: c.name, params: toolCallParams(c) }))
    if (answer.content !== "" || answer.reasoning !== "" || toolCalls.length > 0 || answer.finishReason === "abort") {
      const message: TranscriptMessageJson = {
        role: "assistant",
        content: answer.content,
        ...(answer.reasoning !== "" ? { reasoning: answer.reasoning } : {}),
        ...(toolCalls.length > 0 ? { toolCalls } : {}),
        finishReason: finishReasonOf(answer.finishReason),
        figures: answerFigures(answer)
      }
      append(id, message)
    }
    setStreaming(undefined)
    composer.current?.focus()
  }

  const send = () => {
    if (streaming !== undefined || model === undefined) return
    const text = draft.trim()
    if (text === "" && images.length === 0) return
    const id = current?.id ?? create(model)
    const base = current?.transcript ?? emptyTranscript(model, new Date())
    const t: TranscriptJson = {
      ...base,
      model,
      messages: [...base.messages, { role: "user", content: text, ...(images.length > 0 ? { images: [...images] } : {}) }]
    }
    save(id, t)
    setDraft("")
    setImages([])
    void generate(id, t)
  }

  const answered = new Set((transcript?.messages ?? []).flatMap((m) => (m.role === "tool" && m.toolCallId !== undefined ? [m.toolCallId] : [])))
  const lastAssistant = transcript?.messages.length !== undefined ? transcript.messages.findLastIndex((m) => m.role === "assistant") : -1

  const toolResult = (call: { readonly id: string; readonly name: string }, result: string) => {
    if (current === undefined || streaming !== undefined) return
    const t = { ...current.transcript, messages: [...current.transcript.messages, { role: "tool" as const, content: result, toolCallId: call.id, toolName: call.name }] }
    save(current.id, t)
    const calls = t.messages[lastAssistant]?.toolCalls ?? []
    const done = new Set(t.messages.flatMap((m) => (m.role === "tool" && m.toolCallId !== undefined ? [m.toolCallId] : [])))
    if (calls.every((c) => done.has(c.id))) void generate(current.id, t)
  }

  /**
   * The files chosen, as images: each checked by its own bytes (a PNG, JPEG, GIF or WebP header
   * with a size, whatever its name says; its media type from those bytes) and size; the good ones
   * attached, up to MAX_IMAGES in the message, and every one left out named with why.
   */
  const attach = async (files: FileList | null) => {
    if (files === null) return
    const added: Array<InlineImageJson> = []
    const refused: Array<string> = []
    for (const file of Array.from(files)) {
      if (file.size > MAX_IMAGE_BYTES) {
        refused.push(`${file.name} is larger than ${MAX_IMAGE_BYTES / 1024 / 1024} MiB.`)
        continue
      }
      const bytes = new Uint8Array(await file.arrayBuffer())
      const size = imageSize(bytes)
      if (size === undefined) {
        refused.push(`${file.name} is not an image (PNG, JPEG, GIF or WebP).`)
        continue
      }
      let binary = ""
      for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
      added.push({ mediaType: `image/${size.format}`, data: btoa(binary), name: file.name })
    }
    const room = Math.max(0, MAX_IMAGES - images.length)
    const left = added.slice(room)
    if (left.length > 0) refused.push(`At most ${MAX_IMAGES} images in one message: ${left.map((i) => i.name).join(", ")} left out.`)
    setImages((all) => [...all, ...added].slice(0, MAX_IMAGES))
    setError(refused.length > 0 ? refused.join(" ") : undefined)
  }

  const exportCurrent = () => {
    if (transcript === undefined) return
    const blob = new Blob([`${JSON.stringify(transcript, null, 2)}\n`], { type: "application/json" })
    const url = URL.createObjectURL(blob)
    const a = document.createElement("a")
    a.href = url
    a.download = exportFileName(transcript)
    a.click()
    setTimeout(() => URL.revokeObjectURL(url), 0)
  }

  const importFile = async (files: FileList | null) => {
    const file = files?.[0]
    if (file === undefined) return
    const parsed = parseTranscript(await file.text())
    if (importInput.current !== null) importInput.current.value = ""
    if (!parsed.ok) return setError(`${file.name}: ${parsed.error}`)
    create(parsed.transcript.model, parsed.transcript)
  }

  const format = transcript?.parameters?.responseFormat
  const outputMode = format === undefined || format === "text" ? "text" : format === "json" ? "json" : "schema"
  const schemaError = outputMode === "schema" ? jsonObjectError(schemaText) : undefined
  const toolsError = toolsText.trim() === "" ? undefined : toolsProblem(toolsText)
  const sorted = [...conversations].sort((a, b) => b.updatedAt - a.updatedAt)
  const busy = streaming !== undefined

  return (
    <div class="view chat">
      <aside class="conversations" aria-label="Conversations">
        <div class="side-actions">
          <button type="button" disabled={busy || model === undefined} onClick={() => {
            // an empty conversation is already a new one: no pile of empty ones
            if (current === undefined || current.transcript.messages.length > 0) create(model ?? "")
            composer.current?.focus()
          }}>New chat</button>
          <button type="button" disabled={busy} onClick={() => importInput.current?.click()}>Import…</button>
          <input ref={importInput} type="file" accept="application/json,.json" hidden aria-label="Import a transcript" onChange={(e) => void importFile(e.currentTarget.files)} />
        </div>
        <ul>
          {sorted.map((c) => (
            <li key={c.id} class={c.id === currentId ? "current" : ""}>
              <button type="button" class="conv" disabled={busy} aria-current={c.id === currentId ? "true" : undefined} onClick={() => setCurrentId(c.id)}>
                {titleOf(c.transcript)}
                <small class="muted">{c.transcript.model}</small>
              </button>
              {deleting === c.id
                ? <button type="button" class="danger small" onClick={() => {
                  setConversations((all) => all.filter((x) => x.id !== c.id))
                  if (currentId === c.id) setCurrentId(undefined)
                  setDeleting(undefined)
                }}>Delete</button>
                : <button type="button" class="link small" disabled={busy} aria-label={`Delete conversation ${titleOf(c.transcript)}`} onClick={() => setDeleting(c.id)}>✕</button>}
            </li>
          ))}
        </ul>
        <ErrorLine message={storageError} />
      </aside>
      <div class="chat-main">
        <div class="chat-bar">
          <label class="grow">
            Model
            <select value={model ?? ""} disabled={busy} onChange={(e) => changeModel(e.currentTarget.value)} name="model">
              {model !== undefined && modelEntry === undefined ? <option value={model}>{model} (not on this server)</option> : null}
              {chatModels.some((m) => m.loaded)
                ? <optgroup label="Loaded">{chatModels.filter((m) => m.loaded).map((m) => <option key={m.spec} value={m.spec}>{m.spec}</option>)}</optgroup>
                : null}
              <optgroup label="Not loaded">{chatModels.filter((m) => !m.loaded).map((m) => <option key={m.spec} value={m.spec}>{m.spec}</option>)}</optgroup>
            </select>
          </label>
          <button type="button" disabled={transcript === undefined} onClick={exportCurrent}>Export</button>
        </div>
        <details class="settings">
          <summary>System prompt and parameters</summary>
          <div class="settings-grid">
            <label class="wide">
              System prompt
              <textarea rows={3} value={transcript?.system ?? ""} onInput={(e) => {
                const id = current?.id ?? create(model ?? "")
                const base = current?.transcript ?? emptyTranscript(model ?? "", new Date())
                const system = e.currentTarget.value
                const { system: _, ...rest } = base
                save(id, system === "" ? rest : { ...rest, system })
              }} />
            </label>
            <NumberField label="Temperature" min={0} step={0.1} value={transcript?.parameters?.temperature} onChange={(v) => setParameters({ temperature: v })} />
            <NumberField label="Max tokens" min={1} step={1} integer value={transcript?.parameters?.maxTokens} onChange={(v) => setParameters({ maxTokens: v })} />
            <NumberField label="Seed" step={1} integer value={transcript?.parameters?.seed} onChange={(v) => setParameters({ seed: v })} />
            <label>
              Reasoning
              <select value={transcript?.parameters?.reasoning === undefined ? "" : String(transcript.parameters.reasoning)} onChange={(e) => {
                const v = e.currentTarget.value
                setParameters({ reasoning: v === "" ? undefined : v === "true" })
              }}>
                <option value="">Model default</option>
                <option value="true">On</option>
                <option value="false">Off</option>
              </select>
            </label>
            <label>
              Output
              <select value={outputMode} onChange={(e) => {
                const v = e.currentTarget.value
                if (v === "text") setParameters({ responseFormat: undefined })
                else if (v === "json") setParameters({ responseFormat: "json" })
                else {
                  const text = schemaText.trim() === "" ? '{\n  "type": "object",\n  "properties": {}\n}' : schemaText
                  setSchemaText(text)
                  setParameters({ responseFormat: { schema: JSON.parse(jsonObjectError(text) === undefined ? text : "{}") } })
                }
              }}>
                <option value="text">Text</option>
                <option value="json">JSON</option>
                <option value="schema">JSON schema</option>
              </select>
            </label>
            <label class="inline">
              <input type="checkbox" checked={markdown} onChange={(e) => {
                  // stored as it changes, not in an effect after the render: a tab closed right after keeps it
                  const on = e.currentTarget.checked
                  storage.set(MARKDOWN_KEY, on ? "on" : "off")
                  setMarkdown(on)
                }} />
              Show answers as Markdown
            </label>
            {outputMode === "schema"
              ? (
                <label class="wide">
                  JSON schema of the answer
                  <textarea rows={6} class="mono" value={schemaText} aria-invalid={schemaError !== undefined} onInput={(e) => {
                    const text = e.currentTarget.value
                    setSchemaText(text)
                    if (jsonObjectError(text) === undefined) setParameters({ responseFormat: { schema: JSON.parse(text) as Record<string, unknown> } })
                  }} />
                  <ErrorLine message={schemaError} />
                </label>
              )
              : null}
            <label class="wide">
              Tools (JSON: a list of {"{ name, description, parameters }"}; the model's calls are shown, their results typed in)
              <textarea rows={3} class="mono" value={toolsText} aria-invalid={toolsError !== undefined} placeholder='[{"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]' onInput={(e) => {
                const text = e.currentTarget.value
                setToolsText(text)
                if (text.trim() === "") setParameters({ tools: undefined })
                else if (toolsProblem(text) === undefined) setParameters({ tools: normalizeTools(JSON.parse(text)) })
              }} />
              <ErrorLine message={toolsError} />
            </label>
          </div>
        </details>
        <ol class="messages" aria-busy={busy} aria-label="Messages">
          {(transcript?.messages ?? []).map((m, i) =>
            m.role === "user"
              ? (
                <li key={i} class="msg user">
                  <div class="who">You</div>
                  <div class="plain">{m.content}</div>
                  {m.images !== undefined
                    ? <div class="thumbs">{m.images.map((img, j) => ("data" in img ? <img key={j} src={`data:${img.mediaType};base64,${img.data}`} alt={img.name ?? "attached image"} /> : <span key={j} class="muted">{img.path}</span>))}</div>
                    : null}
                </li>
              )
              : m.role === "tool"
              ? (
                <li key={i} class="msg tool">
                  <div class="who">Result of <code>{m.toolName ?? m.toolCallId}</code></div>
                  <div class="plain">{m.content}</div>
                </li>
              )
              : (
                <AssistantMessage
                  key={i}
                  content={m.content}
                  reasoning={m.reasoning}
                  toolCalls={m.toolCalls ?? []}
                  finishReason={m.finishReason}
                  figures={m.figures}
                  model={m.model}
                  streaming={false}
                  markdown={markdown}
                  answerable={(id) => i === lastAssistant && !busy && !answered.has(id)}
                  onToolResult={toolResult}
                />
              )
          )}
          {streaming !== undefined
            ? (
              <AssistantMessage
                content={streaming.answer.content}
                reasoning={streaming.answer.reasoning}
                toolCalls={streaming.answer.toolCalls.map((c, i) => ({ id: c.id ?? `call_${i}`, name: c.name, params: c.arguments }))}
                finishReason={undefined}
                figures={undefined}
                model={undefined}
                streaming
                markdown={markdown}
                answerable={() => false}
                onToolResult={() => undefined}
              />
            )
            : null}
        </ol>
        {transcript === undefined || transcript.messages.length === 0 ? <p class="muted empty">{model === undefined ? "No chat model on this server yet: pull one in Models." : `Ask ${model} something.`}</p> : null}
        <ErrorLine message={error} />
        <form class="composer" onSubmit={(e) => {
          e.preventDefault()
          send()
        }}>
          {images.length > 0
            ? (
              <div class="thumbs">
                {images.map((img, i) => (
                  <button key={i} type="button" class="thumb" aria-label={`Remove ${img.name ?? "image"}`} onClick={() => setImages((all) => all.filter((_, j) => j !== i))}>
                    <img src={`data:${img.mediaType};base64,${img.data}`} alt={img.name ?? "attached image"} />
                  </button>
                ))}
              </div>
            )
            : null}
          <label class="sr-only" for="composer">Message</label>
          <textarea
            id="composer"
            ref={composer}
            rows={3}
            value={draft}
            placeholder="Message (Enter sends, Shift+Enter for a new line, Esc stops)"
            onInput={(e) => setDraft(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
                e.preventDefault()
                send()
              } else if (e.key === "Escape" && streaming !== undefined) {
                e.preventDefault()
                streaming.controller.abort()
              }
            }}
          />
          <div class="composer-actions">
            {model !== undefined
              ? (
                <>
                  <button
                    type="button"
                    onClick={() => imageInput.current?.click()}
                    disabled={!canAttach || images.length >= MAX_IMAGES}
                    title={!canAttach
                      ? `${model} cannot take images: its capabilities lack vision`
                      : images.length >= MAX_IMAGES
                      ? `At most ${MAX_IMAGES} images in one message`
                      : undefined}
                  >
                    Attach image
                  </button>
                  <input ref={imageInput} type="file" accept="image/png,image/jpeg,image/webp,image/gif" multiple hidden aria-label="Attach images" onChange={(e) => {
                    void attach(e.currentTarget.files)
                    e.currentTarget.value = ""
                  }} />
                </>
              )
              : null}
            {busy
              ? <button type="button" class="danger" onClick={() => streaming.controller.abort()}>Stop</button>
              : <button type="submit" class="primary" disabled={model === undefined || schemaError !== undefined || toolsError !== undefined}>Send</button>}
          </div>
        </form>
      </div>
    </div>
  )
}

function NumberField(props: {
  readonly label: string
  readonly value: number | undefined
  readonly onChange: (value: number | undefined) => void
  readonly min?: number
  readonly step: number
  readonly integer?: boolean
}) {
  const [text, setText] = useState(props.value === undefined ? "" : String(props.value))
  useEffect(() => setText(props.value === undefined ? "" : String(props.value)), [props.value])
  const invalid = text.trim() !== "" && !valid(Number(text))
  function valid(n: number) {
    return Number.isFinite(n) && (props.min === undefined || n >= props.min) && (!props.integer || Number.isSafeInteger(n))
  }
  return (
    <label>
      {props.label}
      <input
        type="number"
        inputMode={props.integer ? "numeric" : "decimal"}
        min={props.min}
        step={props.step}
        value={text}
        placeholder="default"
        aria-invalid={invalid}
        onInput={(e) => {
          const value = e.currentTarget.value
          setText(value)
          if (value.trim() === "") props.onChange(undefined)
          else if (valid(Number(value))) props.onChange(Number(value))
        }}
      />
    </label>
  )
}

const jsonObjectError = (text: string): string | undefined => {
  try {
    const value = JSON.parse(text) as unknown
    return typeof value === "object" && value !== null && !Array.isArray(value) ? undefined : "A JSON schema is a JSON object."
  } catch (e) {
    return `Not JSON: ${(e as Error).message}`
  }
}

/** Tools as the transcript keeps them, from ours ({ name, parameters }) or OpenAI's ({ type: "function", function: {…} }). */
const normalizeTools = (value: unknown): NonNullable<TranscriptParametersJson["tools"]> =>
  (value as Array<Record<string, unknown>>).map((t) => {
    const fn = (t["type"] === "function" && typeof t["function"] === "object" ? t["function"] : t) as Record<string, unknown>
    return {
      name: String(fn["name"]),
      ...(typeof fn["description"] === "string" ? { description: fn["description"] } : {}),
      parameters: (typeof fn["parameters"] === "object" && fn["parameters"] !== null ? fn["parameters"] : { type: "object", properties: {} }) as Record<string, unknown>
    }
  })

const toolsProblem = (text: string): string | undefined => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    return `Not JSON: ${(e as Error).message}`
  }
  if (!Array.isArray(value)) return "Tools are a JSON list."
  const tools = normalizeTools(value)
  const bad = tools.find((t) => !/^[A-Za-z0-9_.-]{1,64}$/.test(t.name))
  if (bad !== undefined) return `A tool name is 1–64 letters, digits, "_", "." or "-": ${JSON.stringify(bad.name)}.`
  return undefined
}
