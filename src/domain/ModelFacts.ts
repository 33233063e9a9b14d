/**
 * What a GGUF file says about its model, in one place for every view (`model list`, `model info`,
 * `/api/tags`, `/api/ps`, `/api/show`, `/v1/models`): the family (its architecture), the quantization
 * and the capabilities. A listing reads only the first bytes of each file (`peekGgufMetadata`) and gets
 * what converters write there (architecture, file type); `model info` reads the whole header and adds the
 * capabilities, which need the chat template stored after the vocabulary. Pure: no I/O.
 */
import { createHash } from "node:crypto"
import type { GgufFile, GgufValue } from "./GgufReader.js"
import { fileTypeName } from "./GgufReader.js"
import { marksThoughts, takesTools, templateParts } from "./ChatTemplate.js"
import { quantizationOf as quantizationOfName } from "./HubRef.js"
import { rankingSupport } from "./Rerank.js"

/** What a model can be asked to do, in Ollama's words (`types/model/capability.go`), and `rerank`. */
export type Capability = "completion" | "embedding" | "tools" | "thinking" | "rerank"

/** The facts of one model file. */
export interface ModelFacts {
  /** `general.architecture` (`llama`, `qwen2`, …): what Ollama calls the family. */
  readonly family?: string | undefined
  /** `general.file_type` by name (`Q4_K_M`), else what the file name says, else the tensors' dominant type. */
  readonly quantization?: string | undefined
  /** Only when the whole header was read (see `capabilitiesOf`). */
  readonly capabilities?: ReadonlyArray<Capability> | undefined
}

const text = (metadata: ReadonlyMap<string, GgufValue>, key: string): string | undefined => {
  const value = metadata.get(key)
  return typeof value === "string" ? value : undefined
}

const integer = (metadata: ReadonlyMap<string, GgufValue>, key: string): number | undefined => {
  const value = metadata.get(key)
  return typeof value === "number" && Number.isInteger(value) ? value : undefined
}

// llama.cpp's LLAMA_POOLING_TYPE_RANK: a reranker's pooling, not an embedding model's
const POOLING_RANK = 4

/**
 * What the model can be asked to do, as Ollama decides it (`server/images.go`, `Capabilities`): an
 * `<arch>.pooling_type` makes it an embedding model, otherwise it completes text; a chat template that
 * takes tools adds `tools`, one that marks thought segments `thinking` — both read as node-llama-cpp,
 * which runs the model, reads them (`ChatTemplate.ts`). A reranker (rank pooling) has
 * neither: its `rerank` comes from the whole file (`factsOfFile`: the classifier head). Keep this the
 * one function every view calls.
 */
export const capabilitiesOf = (metadata: ReadonlyMap<string, GgufValue>): ReadonlyArray<Capability> => {
  const arch = text(metadata, "general.architecture")
  const pooling = arch !== undefined ? metadata.get(`${arch}.pooling_type`) : undefined
  const template = text(metadata, "tokenizer.chat_template")
  // a reranker's rank pooling: `rerank` comes from its classifier head (factsOfFile), never `embedding`
  if (pooling === POOLING_RANK) return []
  const parts = template !== undefined ? templateParts(template) : undefined
  return [
    pooling !== undefined ? "embedding" : "completion",
    ...(parts !== undefined && takesTools(parts) ? ["tools" as const] : []),
    ...(pooling === undefined && parts !== undefined && marksThoughts(parts) ? ["thinking" as const] : [])
  ]
}

/**
 * Why a model cannot give embeddings, from its capabilities, or undefined when it can or it is not
 * known. Only a header that says so: a reranker's rank pooling (`capabilitiesOf` gives neither
 * `completion` nor `embedding`), whose output is a relevance score per sequence, not a vector. A chat
 * model without a pooling type does embed (node-llama-cpp pools its hidden states), so it is not refused.
 */
export const embeddingRefusal = (capabilities: ReadonlyArray<string> | undefined): string | undefined =>
  capabilities === undefined || capabilities.includes("embedding") || capabilities.includes("completion")
    ? undefined
    : `lacks the "embedding" capability: its header declares a reranker's rank pooling, which scores a query and a document ` +
      `instead of giving vectors (its capabilities: ${capabilities.length > 0 ? capabilities.join(", ") : "none"})`

/** The quantization: the header's file type, else the file name's, else the type holding most tensor bytes. */
export const quantizationOf = (
  metadata: ReadonlyMap<string, GgufValue>,
  fileName: string | undefined,
  tensors?: GgufFile["tensors"]
): string | undefined => {
  const fileType = integer(metadata, "general.file_type")
  if (fileType !== undefined) return fileTypeName(fileType)
  const named = fileName !== undefined ? quantizationOfName(fileName) : undefined
  if (named !== undefined || tensors === undefined) return named
  const bytes = new Map<string, number>()
  for (const t of tensors) bytes.set(t.typeName, (bytes.get(t.typeName) ?? 0) + t.byteSize)
  return [...bytes].sort((a, b) => b[1] - a[1])[0]?.[0]
}

/** The facts in the first entries of a header (a listing's peek): family and quantization. */
export const factsOfMetadata = (metadata: ReadonlyMap<string, GgufValue>, fileName: string | undefined): ModelFacts => {
  const family = text(metadata, "general.architecture")
  const quantization = quantizationOf(metadata, fileName)
  return {
    ...(family !== undefined ? { family } : {}),
    ...(quantization !== undefined ? { quantization } : {})
  }
}

/** The facts of a whole header (`model info`, a load): family, quantization and capabilities. */
export const factsOfFile = (file: GgufFile, fileName: string | undefined): ModelFacts => {
  const quantization = quantizationOf(file.metadata, fileName, file.tensors)
  return {
    family: file.architecture,
    ...(quantization !== undefined ? { quantization } : {}),
    capabilities: [...capabilitiesOf(file.metadata), ...(rankingSupport(file).ok ? ["rerank" as const] : [])]
  }
}

/**
 * A model's identity for APIs that want one (Ollama's `digest`) when no store states its sha256: a sha256
 * of the file's path, size and modification time, so it changes when the file does (the bytes are never
 * hashed for this: a listing cannot read gigabytes).
 */
export const identityDigest = (path: string, sizeBytes: number, modifiedAt: string | undefined): string =>
  createHash("sha256").update(`${path}\0${sizeBytes}\0${modifiedAt ?? ""}`).digest("hex")
