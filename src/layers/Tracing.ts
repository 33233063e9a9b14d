/**
 * Traces over OTLP/HTTP when the standard OpenTelemetry variables ask for it, through
 * `@effect/opentelemetry`'s OTLP tracer (Effect's own spans, exported over Effect's HttpClient; no
 * OpenTelemetry SDK). `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/traces`) turns it on; `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`
 * (`k=v,k2=v2`, values URL-encoded) are sent with every export and never printed;
 * `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` is `http/protobuf` (the default) or `http/json`;
 * `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` name the resource (default service
 * `llmspell`); `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off. Without them
 * this layer is empty and imports nothing (the CLI's start-up is not charged for it).
 *
 * Which spans exist is decided where the work is: the HTTP server's span per request
 * (@effect/platform), the GenAI spans of the metered LocalLLM (`chat <model>`, `embeddings <model>`,
 * with the GenAI semantic conventions' attributes), the backends' spans (`GgufBackend.load`, the hub
 * calls). Library users get the same spans with whatever tracer layer they provide.
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"

const setting = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Effect.map(Option.filter((v) => v.trim() !== "")),
    Effect.orElseSucceed(() => Option.none<string>())
  )

/** `k=v,k2=v2` (values URL-encoded, as the OTLP exporter spec says); malformed pairs are skipped. */
export const parseHeaders = (text: string): Record<string, string> => {
  const headers: Record<string, string> = {}
  for (const pair of text.split(",")) {
    const at = pair.indexOf("=")
    if (at <= 0) continue
    const key = pair.slice(0, at).trim()
    let value = pair.slice(at + 1).trim()
    try {
      value = decodeURIComponent(value)
    } catch {
      // kept as written
    }
    if (key !== "") headers[key] = value
  }
  return headers
}

/** Where traces go, and how, from the OTEL_* settings; none when export is off. */
export const exportSettings = Effect.gen(function*() {
  const disabled = Option.getOrUndefined(yield* setting("OTEL_SDK_DISABLED"))?.toLowerCase() === "true" ||
    Option.getOrUndefined(yield* setting("OTEL_TRACES_EXPORTER"))?.toLowerCase() === "none"
  const traces = yield* setting("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
  const base = yield* setting("OTEL_EXPORTER_OTLP_ENDPOINT")
  const url = Option.isSome(traces)
    ? traces.value
    : Option.isSome(base)
    ? `${base.value.replace(/\/+$/, "")}/v1/traces`
    : undefined
  if (disabled || url === undefined) return undefined
  const headers = Option.orElse(yield* setting("OTEL_EXPORTER_OTLP_TRACES_HEADERS"), () => Option.none<string>())
  const anyHeaders = Option.isSome(headers) ? headers : yield* setting("OTEL_EXPORTER_OTLP_HEADERS")
  const protocol = Option.getOrUndefined(
    Option.orElse(yield* setting("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), () => Option.none<string>())
  ) ?? Option.getOrUndefined(yield* setting("OTEL_EXPORTER_OTLP_PROTOCOL")) ?? "http/protobuf"
  const serviceName = Option.getOrUndefined(yield* setting("OTEL_SERVICE_NAME"))
  return {
    url,
    headers: Option.isSome(anyHeaders) ? parseHeaders(anyHeaders.value) : {},
    json: protocol.trim().toLowerCase() === "http/json",
    serviceName
  }
})

/** The OTLP tracer when the OTEL_* settings ask for it, else nothing; exports are flushed when the layer closes. */
export const layerFromEnvironment = (version?: string): Layer.Layer<never> =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const settings = yield* exportSettings
      if (settings === undefined) return Layer.empty
      const [OtlpTracer, OtlpSerialization, FetchHttpClient] = yield* Effect.promise(() =>
        Promise.all([
          import("@effect/opentelemetry/OtlpTracer"),
          import("@effect/opentelemetry/OtlpSerialization"),
          import("@effect/platform/FetchHttpClient")
        ])
      )
      return OtlpTracer.layer({
        url: settings.url,
        headers: settings.headers,
        resource: {
          // OTEL_SERVICE_NAME wins (the resource reads it); else llmspell
          ...(settings.serviceName === undefined ? { serviceName: "llmspell" } : {}),
          ...(version !== undefined ? { serviceVersion: version } : {})
        }
      }).pipe(
        Layer.provide(settings.json ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf),
        Layer.provide(FetchHttpClient.layer)
      )
    })
  )

/** True when the user opted in to prompt and answer text in spans (the GenAI conventions' variable). */
export const captureContent = Effect.map(
  setting("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"),
  (v) => Option.isSome(v) && v.value.trim().toLowerCase() === "true"
)
