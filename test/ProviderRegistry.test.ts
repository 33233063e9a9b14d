/**
 * Routing: explicit @backend first, then the provider instance's type, `local` → default_backend,
 * no provider → default_provider, cloud → ProviderNotAvailable. Pure `route`, then the layer with
 * fake backend factories that count `make` calls (lazy, cached per instance, even concurrently).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { type LlmspellConfig, MAX_INSTANCES, resolveConfig } from "../src/domain/ConfigSchema.js"
import { BackendUnavailable, InvalidModelSpec, ProviderNotAvailable } from "../src/domain/Errors.js"
import type { Backend, BackendFactory } from "../src/services/Backend.js"
import * as ConfigLive from "../src/layers/ConfigLive.js"
import { CloudBackendFactory } from "../src/services/CloudBackend.js"
import { GgufBackendFactory } from "../src/services/GgufBackend.js"
import { OllamaBackendFactory } from "../src/services/OllamaBackend.js"
import * as Routing from "../src/domain/Routing.js"
import * as LocalLLMLive from "../src/layers/LocalLLMLive.js"
import * as ProviderRegistryLive from "../src/layers/ProviderRegistryLive.js"
import { ProviderRegistry } from "../src/services/ProviderRegistry.js"
import { defaultTestConfig, ModelDownloaderMock } from "../src/testing.js"

const configOf = (toml: string, env: Record<string, string> = {}): LlmspellConfig =>
  Either.getOrThrowWith(
    resolveConfig({ home: "/home/t", env, file: { path: "/t/llmspell.toml", text: toml } }),
    (e) => new Error(e.problems.join("\n"))
  )

const CONFIG = configOf(`
[providers.workstation]
provider_type = "ollama"
base_url = "http://10.0.0.5:11434"

[providers.cpu]
provider_type = "gguf"
model_directory = "/srv/cpu"

[providers.gpt]
provider_type = "openai"
`)

const routeOf = (spec: string | { provider?: string; model: string; backend?: string }, config = CONFIG) =>
  Routing.route(config, spec)
const routed = (spec: string, config = CONFIG) => {
  const r = routeOf(spec, config)
  if (Either.isLeft(r)) throw new Error(`${spec}: ${r.left.message}`)
  return r.right
}
const refused = (spec: string | { provider?: string; model: string; backend?: string }, config = CONFIG) => {
  const r = routeOf(spec, config)
  if (Either.isRight(r)) throw new Error(`expected ${JSON.stringify(spec)} to be refused, routed to ${r.right.instance.name}`)
  return r.left
}

describe("route (pure)", () => {
  it.each([
    // no provider → default_provider (local) → default_backend (gguf)
    ["qwen2.5:0.5b", "gguf", "gguf", "qwen2.5:0.5b"],
    ["local/llama3.1:8b", "gguf", "gguf", "llama3.1:8b"],
    // explicit @backend first
    ["local/phi3:3.8b@ollama", "ollama", "ollama", "phi3:3.8b"],
    ["qwen2.5:0.5b@ollama", "ollama", "ollama", "qwen2.5:0.5b"],
    ["qwen2.5:0.5b@candle", "gguf", "gguf", "qwen2.5:0.5b"],
    // a provider type → that type's default instance
    ["ollama/llama3.2", "ollama", "ollama", "llama3.2"],
    ["gguf/x", "gguf", "gguf", "x"],
    ["candle/x", "gguf", "gguf", "x"],
    // a configured instance → its type
    ["workstation/qwen2.5:7b", "workstation", "ollama", "qwen2.5:7b"],
    ["workstation/qwen2.5:7b@ollama", "workstation", "ollama", "qwen2.5:7b"],
    ["cpu/x.gguf", "cpu", "gguf", "x.gguf"],
    // hub repos and files are models, not providers
    ["bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M@gguf", "gguf", "gguf", "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"],
    ["hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "gguf", "gguf", "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"],
    ["./models/x.gguf", "gguf", "gguf", "./models/x.gguf"]
  ])("%s → instance %s (%s), model %s", (spec, instance, backend, model) => {
    const r = routed(spec)
    expect([r.instance.name, r.backend, r.model]).toStrictEqual([instance, backend, model])
    expect(r.text).toBe(spec)
    expect(r.reason.length).toBeGreaterThan(0)
  })

  it("a local file runs on the GGUF runtime whatever the default backend or provider says", () => {
    const ollamaFirst = configOf(
      `[providers]\ndefault_backend = "ollama"\ndefault_provider = "workstation"\n` +
        `[providers.workstation]\nprovider_type = "ollama"\nbase_url = "http://10.0.0.5:11434"\n`
    )
    for (const file of ["/abs/x.gguf", "./x.gguf", "../x.gguf", "~/x.gguf", "file:///abs/x.gguf", "./x.gguf@gguf", "./x.gguf@candle"]) {
      expect(routed(file, ollamaFirst), file).toMatchObject({ backend: "gguf", instance: { name: "gguf" } })
      expect(routed(file, ollamaFirst).reason).toMatch(/local file/)
    }
    // a gguf instance named as the default provider keeps the file
    expect(routed("./x.gguf", configOf(`[providers]\ndefault_provider = "cpu"\n[providers.cpu]\nprovider_type = "gguf"\nmodel_directory = "/m"\n`)).instance.name)
      .toBe("cpu")
    const onOllama = refused("./x.gguf@ollama", ollamaFirst)
    expect(onOllama).toBeInstanceOf(ProviderNotAvailable)
    expect(onOllama.message).toMatch(/a local file runs on the GGUF runtime, not @ollama/)
    expect(refused("/abs/x.gguf", configOf(`[providers.gguf]\nprovider_type = "ollama"\n`))).toBeInstanceOf(ProviderNotAvailable)
  })

  it("`local` follows default_backend", () => {
    const c = configOf(`[providers]\ndefault_backend = "ollama"\n`)
    expect(routed("local/x", c).backend).toBe("ollama")
    expect(routed("x", c).backend).toBe("ollama")
    expect(routed("x@gguf", c).backend).toBe("gguf")
    expect(routed("x", configOf("", { LLMSPELL_DEFAULT_BACKEND: "ollama" })).instance.name).toBe("ollama")
  })

  it("no provider uses default_provider, which may be a configured instance", () => {
    const c = configOf(`[providers]\ndefault_provider = "box"\n[providers.box]\nprovider_type = "ollama"\nbase_url = "http://box:1001"\n`)
    expect(routed("x", c).instance.name).toBe("box")
    expect(routed("x", c).reason).toMatch(/default_provider box/)
    // @backend still comes first: box is ollama, so @gguf goes to the gguf instance.
    expect(routed("x@gguf", c).instance.name).toBe("gguf")
    expect(routed("x@ollama", c).instance.name).toBe("box")
  })

  it("a configured instance named like a type wins over the type's default instance", () => {
    const c = configOf(`[providers.ollama]\nprovider_type = "ollama"\nbase_url = "http://mine:1001"\n[providers.other]\nprovider_type = "ollama"\n`)
    expect(routed("ollama/x", c).instance).toMatchObject({ name: "ollama", baseUrl: "http://mine:1001" })
    expect(routed("other/x", c).instance.name).toBe("other")
  })

  it("with no instance of the asked type, ProviderNotAvailable says so", () => {
    const c = configOf(`[providers.ollama]\nprovider_type = "gguf"\nmodel_directory = "/m"\n`)
    const e = refused("x@ollama", c)
    expect(e).toBeInstanceOf(ProviderNotAvailable)
    expect(e.message).toMatch(/no ollama instance is configured/)
  })

  it("an instance asked for another backend is refused", () => {
    const e = refused("workstation/x@gguf")
    expect(e).toBeInstanceOf(ProviderNotAvailable)
    expect(e.message).toMatch(/workstation is a ollama provider, but the spec asks for @gguf|workstation.*@gguf/)
  })

  it.each([
    ["openai/gpt-4o", "openai", "gpt-4o"],
    ["anthropic/claude", "anthropic", "claude"],
    ["gpt/gpt-4o", "gpt", "gpt-4o"]
  ])("cloud %s → the cloud backend, instance %s", (spec, instance, model) => {
    const r = routed(spec)
    expect([r.backend, r.instance.name, r.model]).toEqual(["cloud", instance, model])
  })

  it.each(["mistral/x@ollama", "replicate/x"])("cloud %s → ProviderNotAvailable (a cloud model takes no @backend; replicate has no client)", (spec) => {
    const e = refused(spec)
    expect(e._tag).toBe("ProviderNotAvailable")
    expect(e.reason).toMatch(/drop @ollama|no client for replicate/)
  })

  it("an unknown provider (from a spec object) is refused; a bad spec string fails as InvalidModelSpec", () => {
    expect(refused({ provider: "nowhere", model: "x" }).reason).toMatch(/no such provider/)
    expect(refused("x@bogus")).toBeInstanceOf(InvalidModelSpec)
    expect(refused("")).toBeInstanceOf(InvalidModelSpec)
  })

  it("a parsed spec object routes like its text", () => {
    expect(routed("workstation/m").instance.name).toBe(
      Either.getOrThrow(routeOf({ provider: "workstation", model: "m" })).instance.name
    )
    expect(Either.getOrThrow(routeOf({ provider: "local", model: "m", backend: "ollama" })).text).toBe("local/m@ollama")
  })
})

// ---------------------------------------------------------------------------------------------
// The layer, with fake factories
// ---------------------------------------------------------------------------------------------

const fakeBackend = (name: string, type: "ollama" | "gguf" | "cloud"): Backend => ({
  name,
  type,
  status: Effect.succeed({ instance: name, backend: type, endpoint: "fake", available: true, loaded: [], details: {}, warnings: [] }),
  list: Effect.succeed([]),
  info: () => Effect.die("unused"),
  pull: () => Stream.die("unused"),
  remove: () => Effect.die("unused"),
  verify: () => Effect.die("unused"),
  generate: () => Stream.die("unused"),
  embed: () => Effect.die("unused")
})

/** Fake factories that count make calls per instance; `gate` (if given) holds every make until opened. */
const fakes = (options: { gate?: Deferred.Deferred<void>; failOllama?: boolean } = {}) => {
  const made: Array<string> = []
  const released: Array<string> = []
  const factory = <T extends "ollama" | "gguf" | "cloud">(type: T): BackendFactory<any> => ({
    type,
    make: (instance) =>
      Effect.gen(function*() {
        made.push(instance.name)
        if (options.gate) yield* Deferred.await(options.gate)
        if (type === "ollama" && options.failOllama) {
          return yield* Effect.fail(new BackendUnavailable({ backend: "ollama", instance: instance.name, reason: "down" }))
        }
        yield* Effect.addFinalizer(() => Effect.sync(() => void released.push(instance.name)))
        return fakeBackend(instance.name, type)
      })
  })
  const layer = ProviderRegistryLive.layer.pipe(
    Layer.provide(
      Layer.mergeAll(
        Layer.succeed(OllamaBackendFactory, factory("ollama")),
        Layer.succeed(GgufBackendFactory, factory("gguf")),
        Layer.succeed(CloudBackendFactory, factory("cloud")),
        ConfigLive.layerValue(CONFIG)
      )
    )
  )
  return { made, released, layer, factory }
}

describe("ProviderRegistry layer", () => {
  it.effect("creates nothing until a spec is resolved, then one instance per name, cached", () => {
    const f = fakes()
    return Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      expect(f.made).toStrictEqual([])
      yield* registry.route("workstation/x")
      expect(f.made).toStrictEqual([])

      const a = yield* registry.resolve("workstation/qwen2.5:7b")
      expect([a.instance.name, a.backend, a.model, a.handle.name]).toStrictEqual(["workstation", "ollama", "qwen2.5:7b", "workstation"])
      const b = yield* registry.resolve("workstation/other")
      expect(b.handle).toBe(a.handle)
      expect(f.made).toStrictEqual(["workstation"])

      yield* registry.resolve("qwen2.5:0.5b")
      yield* registry.resolve("local/x@gguf")
      yield* registry.resolve("ollama/llama3.2")
      expect(f.made).toStrictEqual(["workstation", "gguf", "ollama"])
      expect(registry.instances().map((i) => i.name)).toStrictEqual(["ollama", "gguf", "workstation", "cpu"])
      expect(registry.instances("gguf").map((i) => i.name)).toStrictEqual(["gguf", "cpu"])
    }).pipe(Effect.provide(f.layer))
  })

  it.effect("concurrent resolves of one instance make it once", () => {
    return Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const f = fakes({ gate })
      yield* Effect.gen(function*() {
        const registry = yield* ProviderRegistry
        const fiber = yield* Effect.forEach(
          ["cpu/a", "cpu/b", "cpu/c", "gguf/d", "e@gguf", "cpu/f"],
          (spec) => registry.resolve(spec),
          { concurrency: "unbounded" }
        ).pipe(Effect.fork)
        // Every resolve is now waiting on a make that cannot finish yet.
        yield* Effect.yieldNow({ priority: 1 })
        yield* Deferred.succeed(gate, undefined)
        const resolved = yield* fiber.await.pipe(Effect.flatten)
        expect(resolved.map((r) => r.handle.name)).toStrictEqual(["cpu", "cpu", "cpu", "gguf", "gguf", "cpu"])
        expect(new Set(resolved.filter((r) => r.instance.name === "cpu").map((r) => r.handle)).size).toBe(1)
        expect([...f.made].sort()).toStrictEqual(["cpu", "gguf"])
      }).pipe(Effect.provide(f.layer))
    })
  })

  it.effect("instances are released when the registry's layer ends", () => {
    const f = fakes()
    return Effect.gen(function*() {
      yield* Effect.gen(function*() {
        const registry = yield* ProviderRegistry
        yield* registry.resolve("workstation/x")
        yield* registry.resolve("x")
        expect(f.released).toStrictEqual([])
      }).pipe(Effect.provide(f.layer))
      expect([...f.released].sort()).toStrictEqual(["gguf", "workstation"])
    })
  })

  it.effect("routing failures are typed and create nothing", () => {
    const f = fakes()
    return Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const invalid = yield* Effect.flip(registry.resolve("x@"))
      expect(invalid._tag).toBe("InvalidModelSpec")
      const missing = yield* Effect.flip(registry.instance("nowhere"))
      expect(missing._tag).toBe("ProviderNotAvailable")
      expect(f.made).toStrictEqual([])
    }).pipe(Effect.provide(f.layer))
  })

  it.effect("the layer requires the cloud factory, and a cloud spec gets its instance from it", () => {
    const f = fakes()
    return Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const resolved = yield* registry.resolve("openai/gpt-4o")
      expect([resolved.backend, resolved.model, resolved.handle.type]).toStrictEqual(["cloud", "gpt-4o", "cloud"])
      expect(f.made).toStrictEqual(["openai"])
    }).pipe(Effect.provide(f.layer))
  })

  it.scoped("a registry made without a cloud factory routes a cloud spec but makes no instance", () => {
    const f = fakes()
    return Effect.gen(function*() {
      const registry = yield* ProviderRegistryLive.make(CONFIG, [f.factory("ollama"), f.factory("gguf")])
      const cloud = yield* Effect.flip(registry.resolve("openai/gpt-4o"))
      expect(cloud._tag).toBe("ProviderNotAvailable")
      const configuredCloud = yield* Effect.flip(registry.resolve("gpt/gpt-4o"))
      expect(configuredCloud._tag).toBe("ProviderNotAvailable")
      const invalid = yield* Effect.flip(registry.resolve("x@"))
      expect(invalid._tag).toBe("InvalidModelSpec")
      const missing = yield* Effect.flip(registry.instance("nowhere"))
      expect(missing._tag).toBe("ProviderNotAvailable")
      const cloudInstance = yield* Effect.flip(registry.instance("gpt"))
      expect(cloudInstance.message).toMatch(/no cloud backend is registered/)
      expect(f.made).toStrictEqual([])
    })
  })

  it.effect("a factory's failure reaches the caller typed", () => {
    const f = fakes({ failOllama: true })
    return Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const e = yield* Effect.flip(registry.resolve("ollama/llama3.2"))
      expect(e._tag).toBe("BackendUnavailable")
      // The gguf side is unaffected.
      expect((yield* registry.resolve("x@gguf")).handle.name).toBe("gguf")
    }).pipe(Effect.provide(f.layer))
  })
})

describe("failed instance creation", () => {
  it.effect("is not cached: the next use tries again", () =>
    Effect.gen(function*() {
      let attempts = 0
      const flaky: BackendFactory<any> = {
        type: "ollama",
        make: () =>
          Effect.suspend(() => {
            attempts++
            return attempts === 1
              ? Effect.fail(new BackendUnavailable({ backend: "ollama", reason: "starting" }))
              : Effect.succeed({ name: "ollama", type: "ollama" } as unknown as Backend)
          })
      }
      const registry = yield* ProviderRegistryLive.make(defaultTestConfig(), [flaky])
      const first = yield* Effect.flip(registry.instance("ollama"))
      expect(first._tag).toBe("BackendUnavailable")
      const second = yield* registry.instance("ollama")
      expect(second.name).toBe("ollama")
      yield* registry.instance("ollama")
      expect(attempts).toBe(2)
    }).pipe(Effect.scoped))
})

describe("many instances (issue 19 item 25: 10,000 provider tables took model list/status past 30 s)", () => {
  const manyConfig = (n: number) =>
    configOf(Array.from({ length: n }, (_, i) => `[providers.o${i}]\nprovider_type = "ollama"\nbase_url = "http://10.0.0.${i % 250}:11434"\n`).join("\n"))

  /**
   * An Ollama factory whose backends' status/list/ps hold until the gate opens, counting how many
   * run at once; the gate opens when as many are waiting as the limit allows (or all of them).
   */
  const gated = (expected: number) => {
    let inFlight = 0
    let most = 0
    const calls = { count: 0 }
    const gate = Effect.runSync(Deferred.make<void>())
    const enter = <A>(value: A) =>
      Effect.gen(function*() {
        calls.count++
        inFlight++
        most = Math.max(most, inFlight)
        if (inFlight >= expected) yield* Deferred.succeed(gate, undefined)
        yield* Deferred.await(gate)
        inFlight--
        return value
      })
    const factory: BackendFactory<any> = {
      type: "ollama",
      make: (instance) =>
        Effect.succeed({
          ...fakeBackend(instance.name, "ollama"),
          status: enter({ instance: instance.name, backend: "ollama" as const, endpoint: "fake", available: true, loaded: [], details: {}, warnings: [] }),
          list: enter([]),
          ps: enter([])
        })
    }
    return { factory, most: () => most, calls }
  }

  it.effect("status, list and ps probe at most PROBE_CONCURRENCY instances at once, and answer for every one", () =>
    Effect.gen(function*() {
      const config = manyConfig(200)
      const n = config.instances.filter((i) => i.type === "ollama").length
      for (const op of ["status", "list", "ps"] as const) {
        const fake = gated(LocalLLMLive.PROBE_CONCURRENCY)
        const registry = yield* ProviderRegistryLive.make(config, [fake.factory])
        const llm = LocalLLMLive.make(registry, ModelDownloaderMock().store)
        const answered = op === "status"
          ? (yield* llm.status("ollama")).length
          : op === "list"
          ? ((yield* llm.list("ollama")).unavailable.length + fake.calls.count)
          : (yield* llm.ps("ollama"), fake.calls.count)
        expect(answered, op).toBeGreaterThanOrEqual(n)
        expect(fake.calls.count, op).toBe(n)
        expect(fake.most(), op).toBe(LocalLLMLive.PROBE_CONCURRENCY)
      }
    }).pipe(Effect.scoped))

  it.effect("each of the most instances a config may have is built once under concurrent lookups", () =>
    Effect.gen(function*() {
      const config = manyConfig(MAX_INSTANCES - 2)
      const ollamas = config.instances.filter((i) => i.type === "ollama")
      let made = 0
      const registry = yield* ProviderRegistryLive.make(config, [{
        type: "ollama",
        make: (instance) => Effect.sync(() => (made++, fakeBackend(instance.name, "ollama")))
      }])
      yield* Effect.forEach(ollamas, (i) => registry.instance(i.name), { concurrency: 64, discard: true })
      yield* Effect.forEach(ollamas, (i) => registry.instance(i.name), { concurrency: 64, discard: true })
      expect(made).toBe(ollamas.length)
    }).pipe(Effect.scoped))
})
