/**
 * Reads and validates a GGUF file's header with our strict reader (`domain/GgufReader.ts`) before
 * llama.cpp may see the file: reads a prefix, and a longer one while the reader answers NeedMore.
 * Every problem (missing file, directory, malformed header) is an `InvalidModelFile` or a
 * `ModelNotFound`; nothing here throws.
 */
import * as Effect from "effect/Effect"
// node:fs for O_NONBLOCK (a FIFO must not block the open) and the chunked reads of the header loop
import { constants as fsConstants, type Stats } from "node:fs"
import * as fs from "node:fs/promises"
import { InvalidModelFile, ModelNotFound } from "../../domain/Errors.js"
import { type GgufFile, parseGguf } from "../../domain/GgufReader.js"
import { fileKind } from "./fileKind.js"

const FIRST_READ = 256 * 1024
// Real headers stay far below this: a 262k-token vocabulary with scores, types and merges is ~10 MB.
// Beyond it we refuse: the reader parses synchronously, and a header claiming a 500 MB key kept the
// process busy for seconds (deaf to Ctrl-C) before it was refused anyway.
const MAX_HEADER_BYTES = 64 * 1024 * 1024
const READ_CHUNK = 8 * 1024 * 1024

const notRegular = (path: string, stat: Stats) =>
  new InvalidModelFile({ path, reason: `it is ${fileKind(stat)}, not a regular file` })

/**
 * Validates the file at `path` and returns its parsed header. Only a regular file is opened: opening a
 * FIFO blocks until a writer appears (forever, and inside an uninterruptible acquire), and a device
 * never ends. So the path is stat'ed first, and opened with O_NONBLOCK so a FIFO swapped in between
 * cannot block either; the handle is checked again before anything is read.
 */
export const readGgufFile = (
  path: string,
  context: { readonly model: string; readonly instance: string }
): Effect.Effect<GgufFile, InvalidModelFile | ModelNotFound> =>
  Effect.acquireUseRelease(
    Effect.gen(function*() {
      const missing = (e: unknown) => {
        const code = (e as NodeJS.ErrnoException).code
        return code === "ENOENT" || code === "ENOTDIR"
          ? new ModelNotFound({ model: context.model, backend: "gguf", instance: context.instance, detail: `no file at ${path}` })
          : new InvalidModelFile({ path, reason: `cannot open the file (${code ?? String(e)})` })
      }
      const stat = yield* Effect.tryPromise({ try: () => fs.stat(path), catch: missing })
      if (!stat.isFile()) return yield* notRegular(path, stat)
      return yield* Effect.tryPromise({
        try: () => fs.open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK),
        catch: missing
      })
    }),
    (handle) =>
      Effect.gen(function*() {
        const stat = yield* Effect.tryPromise({
          try: () => handle.stat(),
          catch: (e) => new InvalidModelFile({ path, reason: `cannot stat the file (${String(e)})` })
        })
        if (!stat.isFile()) return yield* notRegular(path, stat)
        const size = stat.size
        let want = Math.min(FIRST_READ, size)
        let buffer = Buffer.alloc(0)
        let bytesRead = 0
        for (;;) {
          // Read in chunks, keeping what was read: a header that claims hundreds of MB then costs
          // no more than one chunk of waiting when the user presses Ctrl-C (close() waits for a pending read).
          const grown = Buffer.allocUnsafe(want)
          buffer.copy(grown, 0, 0, bytesRead)
          buffer = grown
          while (bytesRead < want) {
            const chunk = Math.min(READ_CHUNK, want - bytesRead)
            const { bytesRead: n } = yield* Effect.tryPromise({
              try: () => handle.read(buffer, bytesRead, chunk, bytesRead),
              catch: (e) => new InvalidModelFile({ path, reason: `cannot read the file (${String(e)})` })
            })
            if (n === 0) return yield* new InvalidModelFile({ path, reason: "the file got shorter while it was read" })
            bytesRead += n
          }
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
      }).pipe(
        // interruptible even when called from an uninterruptible region (a model pool's load)
        Effect.interruptible,
        Effect.withSpan("GgufBackend.readGgufFile", { attributes: { path } })
      ),
    (handle) => Effect.promise(() => handle.close())
  )
