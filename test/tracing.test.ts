/**
 * Traces exported over OTLP/HTTP (`@effect/opentelemetry`'s OTLP tracer, JSON encoding) to a fake
 * collector on 127.0.0.1, from `llmspell serve` driven by the real `openai` client: the HTTP
 * server's span, under it the GenAI `chat <model>` span with the semantic conventions' attributes
 * (operation, model, token usage, finish reason) — and no prompt or answer text unless
 * OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT opts in. Exports are flushed when the server
 * stops. The OTEL_* settings are read as the standard says.
 */
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import { createServer, type Server as HttpServer } from "node:http"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as LlmspellLive from "../src/layers/LlmspellLive.js"
import * as Tracing from "../src/layers/Tracing.js"
import * as Server from "../src/serve/Server.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { stackConfig } from "./fixtures/serveHarness.js"

interface OtlpSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }>
}

/** A fake OTLP/HTTP collector: every POST body to /v1/traces, kept as text and as spans. */
const startCollector = async () => {
  const bodies: Array<string> = []
  const headers: Array<Record<string, unknown>> = []
  const server: HttpServer = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/traces") {
        bodies.push(Buffer.concat(chunks).toString("utf8"))
        headers.push({ ...req.headers })
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${address.port}`,
    bodies,
    headers,
    spans: (): Array<OtlpSpan> =>
      bodies.flatMap((b) =>
        (JSON.parse(b) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<OtlpSpan> }> }> }).resourceSpans.flatMap((r) =>
          r.scopeSpans.flatMap((s) => s.spans)
        )
      ),
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

const attribute = (span: OtlpSpan, key: string): unknown => {
  const value = span.attributes.find((a) => a.key === key)?.value
  if (value === undefined) return undefined
  if ("intValue" in value) return Number(value["intValue"])
  if ("arrayValue" in value) return (value["arrayValue"] as { values: Array<Record<string, unknown>> }).values.map((v) => Object.values(v)[0])
  return Object.values(value)[0]
}

/** Starts the stack and the server with the OTEL settings given; the tracer is in the runtime the server's requests run in. */
const startTraced = async (dir: string, otel: Record<string, string>) => {
  const scope = Effect.runSync(Scope.make())
  const provider = ConfigProvider.fromMap(new Map(Object.entries(otel)))
  const layer = Layer.merge(
    LlmspellLive.layerFromObject(stackConfig({ dir }), { home: dir, env: {} }),
    Tracing.layerFromEnvironment("0.0.0-test")
  )
  const runtime = await Effect.runPromise(Layer.toRuntime(layer).pipe(Effect.withConfigProvider(provider), Scope.extend(scope)))
  const server = await Runtime.runPromise(runtime)(Server.start({ port: 0 }).pipe(Scope.extend(scope)))
  return { url: server.url, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

const CANARY = "CANARY-trace-prompt-51c9"

let dir: string
let collector: Awaited<ReturnType<typeof startCollector>>

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-tracing-"))
  collector = await startCollector()
})
afterAll(async () => {
  await collector?.close()
  rmSync(dir, { recursive: true, force: true })
})

const chatOnce = async (url: string) => {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 })
  return client.chat.completions.create({
    model: "tiny.gguf@gguf",
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: `say ${CANARY}` }],
    max_tokens: 6,
    seed: 1
  })
}

describe("traces over OTLP", () => {
  it("an HTTP request's span, and under it the GenAI chat span with model and usage; no prompt text", async () => {
    const served = join(dir, "plain")
    const traced = await startTraced(served, {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_HEADERS: "x-collector-token=t0k%3Dsecret"
    })
    writeFileSync(join(served, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
    collector.bodies.length = 0
    const reply = await chatOnce(traced.url)
    await traced.close() // flushes the exporter
    const spans = collector.spans()
    const chat = spans.find((s) => s.name === "chat tiny.gguf@gguf")
    expect(chat).toBeDefined()
    expect(attribute(chat!, "gen_ai.operation.name")).toBe("chat")
    expect(attribute(chat!, "gen_ai.request.model")).toBe("tiny.gguf@gguf")
    expect(attribute(chat!, "gen_ai.request.max_tokens")).toBe(6)
    expect(attribute(chat!, "gen_ai.usage.input_tokens")).toBe(reply.usage!.prompt_tokens)
    expect(attribute(chat!, "gen_ai.usage.output_tokens")).toBe(reply.usage!.completion_tokens)
    expect(attribute(chat!, "gen_ai.response.finish_reasons")).toEqual([expect.stringMatching(/^(stop|length)$/)])
    // its ancestor is the HTTP server's span of the request, in the same trace
    const byId = new Map(spans.map((s) => [s.spanId, s]))
    const ancestors: Array<OtlpSpan> = []
    for (let s = byId.get(chat!.parentSpanId ?? ""); s !== undefined; s = byId.get(s.parentSpanId ?? "")) ancestors.push(s)
    const http = ancestors.find((s) => attribute(s, "url.path") === "/v1/chat/completions")
    expect(http).toBeDefined()
    expect(http!.traceId).toBe(chat!.traceId)
    expect(attribute(http!, "http.response.status_code")).toBe(200)
    // the headers of the exporter reach the collector; no text of the conversation leaves
    expect(collector.headers.every((h) => h["x-collector-token"] === "t0k=secret")).toBe(true)
    const all = collector.bodies.join("\n")
    expect(all).not.toContain(CANARY)
    expect(all).not.toContain("Be brief")
  }, 60_000)

  it("with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true the chat span carries the messages", async () => {
    const served = join(dir, "content")
    const traced = await startTraced(served, {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/v1/traces`,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: "true"
    })
    writeFileSync(join(served, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
    collector.bodies.length = 0
    await chatOnce(traced.url)
    await traced.close()
    const chat = collector.spans().find((s) => s.name === "chat tiny.gguf@gguf")
    expect(String(attribute(chat!, "gen_ai.input.messages"))).toContain(CANARY)
    expect(JSON.parse(String(attribute(chat!, "gen_ai.output.messages")))).toEqual([expect.objectContaining({ role: "assistant" })])
  }, 60_000)
})

describe("OTEL settings", () => {
  const settings = (env: Record<string, string>) =>
    Effect.runSync(Tracing.exportSettings.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))))

  it("no endpoint, or disabled: nothing exported; the traces endpoint wins over the base one; headers decoded", () => {
    expect(settings({})).toBeUndefined()
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" })).toBeUndefined()
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_EXPORTER: "none" })).toBeUndefined()
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318/" })).toMatchObject({ url: "http://c:4318/v1/traces", json: false })
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://t:1/x" })?.url).toBe("http://t:1/x")
    expect(Tracing.parseHeaders("a=1, b = x%20y,bad,=v")).toEqual({ a: "1", b: "x y" })
  })
})
