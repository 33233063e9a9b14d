/**
 * Every foreign store at once (`scanAll`), and the targeted scan of a `find` (`scanForReference`): only
 * the places a reference can name a model, then wherever the same bytes (by stated sha256) are. The
 * scanners, one per store, are beside this file; `walk.ts` holds the rules they share (read-only,
 * contained, never blocked, bounded). Interrupting the fiber stops a scan between two calls.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ForeignStores from "../../../domain/ForeignStores.js"
import type { ForeignStoreRoots } from "../../../domain/ForeignStores.js"
import * as HubRef from "../../../domain/HubRef.js"
import { ScanFs } from "../scanFs.js"
import { hfReposWithBlob, scanHfCache } from "./hfCache.js"
import { scanLmStudio } from "./lmStudio.js"
import { scanNodeLlamaCpp } from "./nodeLlamaCpp.js"
import { ollamaHasBlob, scanOllama } from "./ollama.js"
import type { ScanOptions, ScanResult } from "./walk.js"

export { scanHfCache } from "./hfCache.js"
export { scanLmStudio } from "./lmStudio.js"
export { scanNodeLlamaCpp } from "./nodeLlamaCpp.js"
export { scanOllama } from "./ollama.js"
export { DEFAULT_LIMITS, type ScanLimits, type ScanOptions, type ScanResult } from "./walk.js"

const MAX_POINTER_BYTES = 4096

/** The default roots of every store for this user, reading `~/.lmstudio-home-pointer` if it exists. */
export const resolveDefaultRoots = (environment: ForeignStores.StoreEnvironment): Effect.Effect<ForeignStoreRoots, never, ScanFs> =>
  Effect.flatMap(ScanFs, (fs) =>
    fs.readText(ForeignStores.lmstudioHomePointer(environment.home), MAX_POINTER_BYTES).pipe(
      Effect.map((r) => ForeignStores.defaultRoots(environment, r.text)),
      // missing (usual), a FIFO, too large, unreadable: LM Studio's default homes
      Effect.orElseSucceed(() => ForeignStores.defaultRoots(environment))
    ))

/** Scans every store; each one's warnings are kept, none fails the others. */
export const scanAll = (roots: ForeignStoreRoots, options: ScanOptions = {}): Effect.Effect<ScanResult, never, ScanFs> =>
  Effect.map(
    Effect.all([
      scanOllama(roots.ollama, options),
      scanHfCache(roots.hfCache, { ...options, hfDefaultRoot: options.hfDefaultRoot ?? roots.hfCache[0] }),
      scanLmStudio(roots.lmstudio, options),
      scanNodeLlamaCpp(roots.nodeLlamaCpp, options)
    ], { concurrency: 4 }),
    (results) => ({ models: results.flatMap((r) => r.models), warnings: results.flatMap((r) => r.warnings) })
  ).pipe(Effect.withSpan("ModelStore.scanAll"))

/**
 * The only places a reference can name a foreign model, per store, as the scanners' `keep` keys
 * (lower-cased): a superset of what the store's matching accepts, so a `find` scans these and nothing
 * else. Ollama: the manifest path of the name (`host/namespace/model/tag`); HF cache: the repo a hub
 * reference or a listed name (`hf.co/<repo>:<Q>`, `<repo>/<file>`) designates; LM Studio:
 * `publisher/repo`; node-llama-cpp: the file name.
 */
export interface FindTargets {
  readonly ollama: ReadonlySet<string>
  readonly hfRepos: ReadonlySet<string>
  readonly lmstudio: ReadonlySet<string>
  readonly nodeLlamaCpp: ReadonlySet<string>
}

/** Where `ref` can name a model, per store. */
export const targetsOf = (ref: string): FindTargets => {
  const ollama = new Set<string>()
  const name = ForeignStores.parseOllamaName(ref)
  if (name !== undefined) {
    const parts = [name.host, name.namespace, name.model, name.tag].map((p) => p.toLowerCase())
    for (let i = 1; i <= parts.length; i++) ollama.add(parts.slice(0, i).join("/"))
  }
  const texts = new Set([ref.toLowerCase(), ref.trim().toLowerCase()])
  const repos = new Set<string>()
  const parsed = HubRef.parse(ref)
  if (Either.isRight(parsed)) repos.add(parsed.right.repo.toLowerCase())
  for (const text of texts) {
    // `hf.co/<repo>:<Q>` and `<repo>/<file>`: the repo is the first one or two segments
    const bare = text.replace(/^(?:hf\.co|huggingface\.co)\//, "").replace(/:[^/:]*$/, "")
    const segments = bare.split("/")
    repos.add(segments[0]!)
    if (segments.length > 1) repos.add(segments.slice(0, 2).join("/"))
  }
  const lmstudio = new Set<string>()
  for (const repo of repos) {
    const segments = repo.split("/")
    if (segments.length !== 2) continue
    lmstudio.add(segments[0]!)
    lmstudio.add(repo)
  }
  return { ollama, hfRepos: repos, lmstudio, nodeLlamaCpp: new Set([...texts].filter((t) => !t.includes("/"))) }
}

/** LM Studio's `keep`: the publisher folder, then the `publisher/repo` folder, then everything in it. */
const keepLmStudio = (targets: ReadonlySet<string>) => (relPath: string) => {
  const segments = relPath.split("/")
  return targets.has(segments.length === 1 ? segments[0]! : `${segments[0]}/${segments[1]}`)
}

const none: ScanResult = { models: [], warnings: [] }

/**
 * The foreign models `ref` can name, and every model holding the same bytes, without walking whole
 * stores: only the places `targetsOf` names are scanned; a model found there that states a sha256 is
 * then looked up by it (an Ollama `blobs/sha256-<hex>`, an HF cache repo's `blobs/<hex>`), and only a
 * store holding it is scanned further, so the caller can merge locations as a full listing would. (A
 * copy that states no sha256 and would be merged by path, e.g. an LM Studio link into the HF cache,
 * is not added.) The models come in the order `scanAll` lists them.
 */
export const scanForReference = (
  roots: ForeignStoreRoots,
  ref: string,
  options: Omit<ScanOptions, "keep"> = {}
): Effect.Effect<ScanResult, never, ScanFs> =>
  Effect.gen(function*() {
    const targets = targetsOf(ref)
    const base = { ...options, hfDefaultRoot: options.hfDefaultRoot ?? roots.hfCache[0] }
    const scanHf = (repos: ReadonlySet<string>) =>
      repos.size === 0 ? Effect.succeed(none) : scanHfCache(roots.hfCache, { ...base, keep: (r) => repos.has(r) })
    let [ollama, hfCache, lmstudio, nodeLlamaCpp] = yield* Effect.all([
      targets.ollama.size === 0 ? Effect.succeed(none) : scanOllama(roots.ollama, { ...base, keep: (r) => targets.ollama.has(r) }),
      scanHf(targets.hfRepos),
      targets.lmstudio.size === 0 ? Effect.succeed(none) : scanLmStudio(roots.lmstudio, { ...base, keep: keepLmStudio(targets.lmstudio) }),
      targets.nodeLlamaCpp.size === 0
        ? Effect.succeed(none)
        : scanNodeLlamaCpp(roots.nodeLlamaCpp, { ...base, keep: (r) => targets.nodeLlamaCpp.has(r) })
    ], { concurrency: 4 })
    const shasOf = (results: ReadonlyArray<ScanResult>) => [...new Set(results.flatMap((r) => r.models.flatMap((m) => m.sha256 ?? [])))]
    const shas = shasOf([ollama, hfCache, lmstudio, nodeLlamaCpp])
    // An Ollama model's own blob is of course in Ollama's store: only bytes found elsewhere are looked
    // for there. (So a second Ollama name of the same blob, `ollama cp`, is not among find's locations.)
    const shasElsewhere = shasOf([hfCache, lmstudio, nodeLlamaCpp])
    if (shas.length > 0) {
      const [inOllama, hfRepos] = yield* Effect.all([
        Effect.map(Effect.forEach(shasElsewhere, (sha) => ollamaHasBlob(roots.ollama, sha)), (found) => found.some((b) => b)),
        Effect.forEach(shas, (sha) => hfReposWithBlob(roots.hfCache, sha))
      ], { concurrency: 2 })
      // the same bytes under another Ollama name: its manifest can be anywhere, so the whole store
      if (inOllama) ollama = yield* scanOllama(roots.ollama, base)
      const repos = new Set([...targets.hfRepos, ...hfRepos.flatMap((r) => [...r])])
      if (repos.size > targets.hfRepos.size) hfCache = yield* scanHf(repos)
    }
    const results = [ollama, hfCache, lmstudio, nodeLlamaCpp]
    return { models: results.flatMap((r) => r.models), warnings: results.flatMap((r) => r.warnings) }
  }).pipe(Effect.withSpan("ModelStore.scanForReference"))
