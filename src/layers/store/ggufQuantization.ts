/**
 * The quantization of a GGUF file from its header, for files dropped into the model directory by hand:
 * `general.file_type` when the file has it, otherwise the tensor type holding most of the bytes.
 */
import * as Effect from "effect/Effect"
import * as Gguf from "../../domain/GgufReader.js"
import { readGgufFile } from "./readGgufFile.js"

/** The file's quantization (`Q4_K_M`, `Q8_0`, `F16`…), or undefined when its header cannot tell. */
export const ggufQuantization = (path: string): Effect.Effect<string | undefined> =>
  readGgufFile(path, { model: path, instance: "gguf" }).pipe(
    Effect.map((file) => {
      const fileType = Gguf.metadataNumber(file, "general.file_type")
      if (fileType !== undefined) return Gguf.fileTypeName(fileType)
      const bytes = new Map<string, number>()
      for (const t of file.tensors) bytes.set(t.typeName, (bytes.get(t.typeName) ?? 0) + t.byteSize)
      return [...bytes].sort((a, b) => b[1] - a[1])[0]?.[0]
    }),
    Effect.orElseSucceed(() => undefined)
  )
