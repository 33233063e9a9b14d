/**
 * Reads and validates a GGUF file's header with our strict reader (`domain/GgufReader.ts`) before
 * llama.cpp may see the file: reads a prefix, and a longer one while the reader answers NeedMore.
 * Every problem (missing file, directory, malformed header) is an `InvalidModelFile` or a
 * `ModelNotFound`; nothing here throws.
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs/promises"
import { InvalidModelFile, ModelNotFound } from "../../domain/Errors.js"
import { type GgufFile, parseGguf } from "../../domain/GgufReader.js"

const FIRST_READ = 256 * 1024
// Real headers (a 150k-token vocabulary with merges) stay well under this; beyond it we refuse.
const MAX_HEADER_BYTES = 512 * 1024 * 1024

/** Validates the file at `path` and returns its parsed header. */
export const readGgufFile = (
  path: string,
  context: { readonly model: string; readonly instance: string }
): Effect.Effect<GgufFile, InvalidModelFile | ModelNotFound> =>
  Effect.acquireUseRelease(
    Effect.tryPromise({
      try: () => fs.open(path, "r"),
      catch: (e) => {
        const code = (e as NodeJS.ErrnoException).code
        return code === "ENOENT" || code === "ENOTDIR"
          ? new ModelNotFound({ model: context.model, backend: "gguf", instance: context.instance, detail: `no file at ${path}` })
          : new InvalidModelFile({ path, reason: `cannot open the file (${code ?? String(e)})` })
      }
    }),
    (handle) =>
      Effect.gen(function*() {
        const stat = yield* Effect.tryPromise({
          try: () => handle.stat(),
          catch: (e) => new InvalidModelFile({ path, reason: `cannot stat the file (${String(e)})` })
        })
        if (!stat.isFile()) return yield* new InvalidModelFile({ path, reason: "not a regular file" })
        const size = stat.size
        let want = Math.min(FIRST_READ, size)
        for (;;) {
          const buffer = Buffer.alloc(want)
          const { bytesRead } = yield* Effect.tryPromise({
            try: () => handle.read(buffer, 0, want, 0),
            catch: (e) => new InvalidModelFile({ path, reason: `cannot read the file (${String(e)})` })
          })
          const result = parseGguf(buffer.subarray(0, bytesRead), size)
          switch (result._tag) {
            case "Ok":
              return result.file
            case "Invalid":
              return yield* new InvalidModelFile({
                path,
                reason: result.problem.reason,
                ...(result.problem.offset !== undefined ? { offset: result.problem.offset } : {}),
                ...(result.problem.key !== undefined ? { key: result.problem.key } : {})
              })
            case "NeedMore":
              if (result.bytes > MAX_HEADER_BYTES || result.bytes <= bytesRead) {
                return yield* new InvalidModelFile({ path, reason: `header larger than ${MAX_HEADER_BYTES} bytes` })
              }
              // grow geometrically: a long vocabulary would otherwise cost one read per NeedMore
              want = Math.min(size, Math.max(result.bytes, bytesRead * 2))
          }
        }
      }).pipe(Effect.withSpan("GgufBackend.readGgufFile", { attributes: { path } })),
    (handle) => Effect.promise(() => handle.close())
  )
