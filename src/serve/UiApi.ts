/**
 * The JSON routes the web page needs beyond Ollama's and OpenAI's APIs (which it uses for
 * everything they cover: chat, pull, delete, load/unload, show). Under `/ui/api/`, behind the
 * same Host, Origin and API-key checks as every route; all through `LocalLLM`.
 *
 * - `GET /ui/api/server`: version and policy (read-only, paths), so the page hides what it cannot do.
 * - `GET /ui/api/models`: every model of every instance and store, with the spec that reaches it
 *   and whether it is loaded; instances that could not answer are listed apart.
 * - `GET /ui/api/removal?model=SPEC`: the files and bytes a delete would remove (asked first).
 * - `GET /ui/api/ps`: what `llmspell ps --json` shows, plus the server's own load (generations
 *   running and queued, requests in flight), the process's memory and the machine's.
 *
 * Models and loaded models are encoded with the CLI's `--json` Schemas, so fields those types
 * gain (capabilities, per-model request figures) reach the page without a change here.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as os from "node:os"
import { RemovalPlan } from "../domain/Protocol.js"
import { LoadedModel, LocalModel, ModelList } from "../domain/Types.js"
import { json, toHttpFailure } from "./Http.js"
import { checkSpec, type RouteContext, type RouteEnv, servedName } from "./Routes.js"

/** The server's load as the page shows it. */
export interface UiLoad {
  readonly running: number
  readonly queued: number
  readonly inFlight: number
}

/** What the page's routes need from the server beyond the route context. */
export interface UiApiContext {
  /** The server's load now. */
  readonly load: Effect.Effect<UiLoad>
  /** Generations that run at once, and that may wait, before a 503. */
  readonly concurrency: number
  readonly maxQueue: number
}

const encodeModel = Schema.encodeSync(LocalModel)
const encodeLoaded = Schema.encodeSync(LoadedModel)
const encodeUnavailable = Schema.encodeSync(ModelList.fields.unavailable)
const encodePlan = Schema.encodeSync(RemovalPlan)

/** The page's JSON routes. */
export const routes = (ctx: RouteContext, ui: UiApiContext): HttpRouter.HttpRouter<never, never> => {
  const startedAt = Date.now()

  /** Errors as `{"error": …}` with the status, as the Ollama routes answer them. */
  const handle = <E>(effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, RouteEnv>) =>
    Effect.catchAll(effect, (e) => {
      const failure = toHttpFailure(e)
      return Effect.succeed(json({ error: failure.message }, failure.status, failure.headers))
    })

  const server = Effect.succeed(json({
    version: ctx.version,
    readOnly: ctx.readOnly,
    allowPaths: ctx.allowPaths
  }))

  const models = handle(Effect.gen(function*() {
    const [list, loaded] = yield* Effect.all([ctx.llm.list("all"), ctx.llm.ps("all")], { concurrency: 2 })
    const loadedSpecs = new Set(loaded.map(servedName))
    return json({
      models: list.models.map((m) => ({ ...encodeModel(m), spec: servedName(m), loaded: loadedSpecs.has(servedName(m)) })),
      unavailable: encodeUnavailable(list.unavailable)
    })
  }))

  const removal = handle(Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const spec = yield* checkSpec(ctx, new URL(request.url, "http://x").searchParams.get("model") ?? undefined)
    const plan = yield* ctx.llm.planRemoval(spec)
    return json(encodePlan(plan))
  }))

  const ps = handle(Effect.gen(function*() {
    const [loaded, load] = yield* Effect.all([ctx.llm.ps("all"), ui.load], { concurrency: 2 })
    const memory = process.memoryUsage()
    return json({
      models: loaded.map((m) => ({ ...encodeLoaded(m), spec: servedName(m) })),
      server: {
        ...load,
        concurrency: ui.concurrency,
        maxQueue: ui.maxQueue,
        uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed
      },
      machine: { totalMemoryBytes: os.totalmem(), freeMemoryBytes: os.freemem(), cpus: os.availableParallelism(), loadAverage: os.loadavg() }
    })
  }))

  return HttpRouter.empty.pipe(
    HttpRouter.get("/ui/api/server", server),
    HttpRouter.get("/ui/api/models", models),
    HttpRouter.get("/ui/api/removal", removal),
    HttpRouter.get("/ui/api/ps", ps)
  ) as unknown as HttpRouter.HttpRouter<never, never>
}
