/**
 * A kernel server for tests: the real LlmspellLive stack (configured from the same environment a
 * CLI run would see) behind an `@effect/platform` Node HTTP server on 127.0.0.1 (port 0), with
 * llmspell's protocol at `/rpc` (src/serve/rpc.ts). Until `llmspell serve` mounts it, this is what
 * the connected-mode tests talk to.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Scope from "effect/Scope"
import { createServer } from "node:http"
import * as LlmspellLive from "../../src/layers/LlmspellLive.js"
import * as RpcServe from "../../src/serve/rpc.js"
import type { LocalLLM } from "../../src/services/LocalLLM.js"

/** A running test server. */
export interface TestServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string
  /** The stack the server runs (to look at its state from the test). */
  readonly runtime: ManagedRuntime.ManagedRuntime<LocalLLM, unknown>
  readonly close: () => Promise<void>
}

/** Starts a server over LlmspellLive, configured from `env` (HOME, LLMSPELL_MODELS_DIR, OLLAMA_HOST, …) and `cwd`. */
export const startServer = async (options: {
  readonly env: Record<string, string>
  readonly cwd: string
  readonly apiKey?: string
  /** The server's policy; by default paths are allowed (as `llmspell serve --allow-paths`), nothing is read-only. */
  readonly policy?: RpcServe.RpcPolicy
}): Promise<TestServer> => {
  const runtime = ManagedRuntime.make(
    LlmspellLive.layer({ env: options.env, cwd: options.cwd, ...(options.env["HOME"] ? { home: options.env["HOME"] } : {}) })
  ) as ManagedRuntime.ManagedRuntime<LocalLLM, unknown>
  const scope = Effect.runSync(Scope.make())
  const url = await runtime.runPromise(
    Effect.gen(function*() {
      const router = yield* RpcServe.makeRouter({
        allowPaths: true,
        ...options.policy,
        ...(options.apiKey !== undefined ? { apiKey: options.apiKey } : {})
      })
      const server = yield* Layer.buildWithScope(
        HttpServer.serve(router).pipe(
          Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
        ),
        scope
      )
      const address = server.unsafeMap.get(HttpServer.HttpServer.key) as HttpServer.HttpServer
      if (address.address._tag !== "TcpAddress") return yield* Effect.dieMessage("not a TCP server")
      return `http://127.0.0.1:${address.address.port}`
    }).pipe(Effect.provideService(Scope.Scope, scope))
  )
  return {
    url,
    runtime,
    close: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await runtime.dispose()
    }
  }
}
