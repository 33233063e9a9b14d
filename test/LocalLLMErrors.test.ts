/**
 * What each operation can fail with is in its type, and only that: a program that handles every
 * listed error with `catchTags` has nothing left to handle, a handler for an error the operation
 * cannot fail with does not compile, and the protocol sends each operation's errors as its type
 * says. (The type-level checks run under `tsc` with the rest of the suite; the calls below run
 * them against the scripted stack as well.)
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import * as RpcSchema from "@effect/rpc/RpcSchema"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import {
  type BackendCrashed,
  type BackendError,
  type BackendUnavailable,
  type ContextOverflow,
  type DeviceUnavailable,
  type DownloadFailed,
  type ModelStoreUnusable,
  type IncompleteAnswer,
  type InvalidModelFile,
  type InvalidModelSpec,
  type InvalidRequest,
  LlmspellError,
  type MissingCredentials,
  type ModelNotFound,
  type ProviderNotAvailable,
  type RateLimited,
  type SchemaViolation,
  type ServerRefused,
  type ToolChoiceViolated,
  type UnsupportedOperation,
  type UnsupportedSchema
} from "../src/domain/Errors.js"
import * as Protocol from "../src/domain/Protocol.js"
import type { Backend, BackendGenerateError } from "../src/services/Backend.js"
import * as LocalLLM from "../src/services/LocalLLM.js"
import { LlmspellMock } from "../src/testing.js"

const request = { messages: [{ role: "user" as const, content: "hi" }] }
const done = () => Effect.succeed("handled" as const)

/** Every error `generate` (and `run`) lists, as the reader of LocalLLM.ts sees them. */
type Listed =
  | InvalidRequest
  | InvalidModelSpec
  | ProviderNotAvailable
  | BackendUnavailable
  | ServerRefused
  | ModelNotFound
  | ContextOverflow
  | UnsupportedSchema
  | UnsupportedOperation
  | SchemaViolation
  | ToolChoiceViolated
  | InvalidModelFile
  | BackendCrashed
  | DeviceUnavailable
  | BackendError
  | MissingCredentials
  | RateLimited
  | DownloadFailed
  | ModelStoreUnusable

describe("errors per operation", () => {
  it("generate's type is its list, not the whole union", () => {
    expectTypeOf<LocalLLM.GenerateError>().toEqualTypeOf<Listed>()
    expectTypeOf<LocalLLM.RunError>().toEqualTypeOf<Listed | IncompleteAnswer>()
    expectTypeOf<LlmspellError>().not.toEqualTypeOf<LocalLLM.GenerateError>()
    // the backend's own list is generate's without the routing, request and server errors
    expectTypeOf<BackendGenerateError>().toEqualTypeOf<
      Exclude<Listed, InvalidRequest | InvalidModelSpec | ProviderNotAvailable | ServerRefused>
    >()
    expectTypeOf<ReturnType<Backend["generate"]>>().toEqualTypeOf<
      Stream.Stream<Stream.Stream.Success<ReturnType<Backend["generate"]>>, BackendGenerateError>
    >()
  })

  it.effect("catchTags over exactly run's errors leaves nothing to handle", () => {
    const mock = LlmspellMock.make({ gguf: { models: [{ name: "tiny", tokens: ["ok"] }] } })
    const program = Effect.flatMap(LocalLLM.LocalLLM, (llm) => llm.run("nowhere-at-all", request))
    const handled = program.pipe(
      Effect.map(() => "answered" as const),
      Effect.catchTags({
        InvalidRequest: done,
        InvalidModelSpec: done,
        ProviderNotAvailable: done,
        BackendUnavailable: done,
        ServerRefused: done,
        ModelNotFound: done,
        ContextOverflow: done,
        UnsupportedSchema: done,
        UnsupportedOperation: done,
        IncompleteAnswer: done,
        SchemaViolation: done,
        ToolChoiceViolated: done,
        InvalidModelFile: done,
        BackendCrashed: done,
        DeviceUnavailable: done,
        BackendError: done,
        MissingCredentials: done,
        RateLimited: done,
        DownloadFailed: done,
        ModelStoreUnusable: done
      })
    )
    expectTypeOf(handled).toEqualTypeOf<Effect.Effect<"answered" | "handled", never, LocalLLM.LocalLLM>>()
    // one left out stays in the type
    const partly = program.pipe(Effect.catchTags({ ModelNotFound: done }))
    expectTypeOf<Effect.Effect.Error<typeof partly>>().toEqualTypeOf<Exclude<Listed | IncompleteAnswer, ModelNotFound>>()
    // a handler for an error `run` cannot fail with does not compile
    // @ts-expect-error: ChecksumMismatch is a pull's error, not a generation's
    program.pipe(Effect.catchTags({ ChecksumMismatch: done }))
    // @ts-expect-error: a generation is never refused as a config error: the config was read when the stack was built
    program.pipe(Effect.catchTags({ ConfigError: done }))
    return Effect.map(handled, (result) => expect(result).toBe("handled")).pipe(Effect.provide(mock.layer))
  })

  it.effect("pull's errors include the hub's and the disk's; info's do not", () => {
    const mock = LlmspellMock.make()
    return Effect.gen(function*() {
      const llm = yield* LocalLLM.LocalLLM
      const pulled = llm.pull("tiny@ollama").pipe(
        Stream.runDrain,
        Effect.catchTags({ ChecksumMismatch: done, DiskFull: done, HubAuthRequired: done, ModelBusy: done })
      )
      expectTypeOf<Effect.Effect.Error<typeof pulled>>().not.toEqualTypeOf<never>()
      // @ts-expect-error: info reads; it never fills a disk
      llm.info("x").pipe(Effect.catchTags({ DiskFull: done }))
      // status, list, instances and ps report a failing backend in their result: they never fail
      expectTypeOf<Effect.Effect.Error<ReturnType<LocalLLM.LocalLLMService["list"]>>>().toEqualTypeOf<never>()
      expectTypeOf<Effect.Effect.Error<ReturnType<LocalLLM.LocalLLMService["ps"]>>>().toEqualTypeOf<never>()
      expect(yield* pulled).toBeUndefined()
    }).pipe(Effect.provide(mock.layer))
  })

  it("the protocol sends each operation's errors, the members of the one union", () => {
    // a streamed Rpc carries its failure in its stream schema
    const failureOf = (rpc: { readonly successSchema: Schema.Schema.Any; readonly errorSchema: Schema.Schema.All }) =>
      RpcSchema.isStreamSchema(rpc.successSchema) ? rpc.successSchema.failure : rpc.errorSchema
    const rpcs: ReadonlyArray<readonly [Parameters<typeof failureOf>[0], Schema.Schema.Any]> = [
      [Protocol.Info, LocalLLM.InfoError],
      [Protocol.Pull, LocalLLM.PullError],
      [Protocol.Remove, LocalLLM.RemoveError],
      [Protocol.PlanRemoval, LocalLLM.PlanRemovalError],
      [Protocol.Verify, LocalLLM.VerifyError],
      [Protocol.Generate, LocalLLM.GenerateError],
      [Protocol.Run, LocalLLM.RunError],
      [Protocol.Embed, LocalLLM.EmbedError],
      [Protocol.Available, LocalLLM.AvailableError],
      [Protocol.Import, LocalLLM.ImportError],
      [Protocol.PlanOllamaInstall, LocalLLM.PlanOllamaInstallError],
      [Protocol.InstallOllama, LocalLLM.InstallOllamaError],
      [Protocol.Unload, LocalLLM.KeepAliveError],
      [Protocol.KeepAlive, LocalLLM.KeepAliveError],
      [Protocol.Load, LocalLLM.LoadError]
    ]
    const all = new Set<unknown>(LlmspellError.members)
    for (const [rpc, errors] of rpcs) {
      expect(failureOf(rpc)).toBe(errors)
      // a union of one is that one schema
      const members: ReadonlyArray<unknown> = "members" in errors && Array.isArray(errors.members) ? errors.members : [errors]
      for (const member of members) {
        expect(all.has(member)).toBe(true)
      }
    }
    // the operations that never fail carry no error on the wire either
    expect(Schema.encodedSchema(Protocol.Status.errorSchema).ast._tag).toBe("NeverKeyword")
  })
})
