/**
 * The plan of one pull, between resolving the reference and moving bytes: the hub's listing of the repo
 * (one listing, one commit), what of the chosen files is already in the store (trusted in place, a
 * partial to resume), which bytes another store on this machine already holds (linked or copied instead
 * of downloaded), and the manifest that records the result.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as path from "node:path"
import {
  DiskFull,
  type DownloadFailed,
  type HubAuthRequired,
  type ModelNotFound,
  type ModelStoreUnusable,
  type RateLimited
} from "../../domain/Errors.js"
import type * as HubRef from "../../domain/HubRef.js"
import type { ModelFacts } from "../../domain/ModelFacts.js"
import type { PullOptions } from "../../domain/Types.js"
import type { ModelStoreService, StoredBlob, StoreRoot } from "../../services/ModelStore.js"
import {
  absolute,
  type Manifest,
  type ManifestFile,
  mtimeOf,
  readManifests,
  storeError,
  storeRelative,
  trustedFile
} from "../store/ownStore.js"
import { ggufProblem, placeExisting } from "../store/ownStoreWrite.js"
import type { ScanFs } from "../store/scanFs.js"
import { type CallContext, FetchProbe, type HubModule, hubCall } from "./hubClient.js"
import { type RetryOptions, withRetries } from "./retryPolicy.js"

/** The hub's listing of a repo and the commit it describes, so every file comes from that commit. */
export interface Listing {
  readonly files: ReadonlyArray<HubRef.RepoFile>
  readonly commit: string
}

/** Lists the repo once (retried by the policy), with the commit the hub answered with. */
export const resolveListing = (
  lib: HubModule,
  ctx: CallContext,
  hub: { readonly hubUrl: string; readonly hubOrigin: string; readonly token: string | undefined },
  report: (message: string) => Effect.Effect<void>,
  retry: RetryOptions
): Effect.Effect<Listing, ModelNotFound | HubAuthRequired | DownloadFailed | RateLimited> =>
  withRetries(
    () => {
      const probe = new FetchProbe(hub.hubOrigin)
      return hubCall(ctx, probe, "listFiles", async () => {
        const files: Array<HubRef.RepoFile> = []
        for await (
          const entry of lib.listFiles({
            repo: ctx.repo,
            recursive: true,
            hubUrl: hub.hubUrl,
            fetch: probe.fetch,
            ...(hub.token !== undefined ? { accessToken: hub.token } : {})
          })
        ) {
          if (entry.type === "file") files.push({ path: entry.path, size: entry.size, sha256: entry.lfs?.oid })
        }
        const commit = probe.responses.map((r) => r.headers.get("x-repo-commit")).find((c) => c !== null) ?? "main"
        return { files, commit }
      })
    },
    report,
    retry
  )

/** One file of the pull: where it goes, whether it is kept as it is, and how much of it is there. */
export interface PlannedFile {
  readonly file: HubRef.RepoFile
  /** Store-relative path. */
  readonly relative: string
  readonly target: string
  /** In place with the hub's sha256 (recorded by a manifest, and still intact): not downloaded. */
  readonly keep: boolean
  readonly trusted: ManifestFile | undefined
  /** Bytes of a `.partial` to resume from. */
  readonly partialSize: number
}

/** What is left to fetch of the group's files. */
export const planFiles = (
  store: StoreRoot,
  repo: string,
  files: ReadonlyArray<HubRef.RepoFile>,
  force: boolean
): Effect.Effect<ReadonlyArray<PlannedFile>, ModelStoreUnusable, FileSystem.FileSystem | ScanFs> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const known = new Map((yield* readManifests(store)).flatMap((m) => m.files.map((f) => [f.path, f] as const)))
    return yield* Effect.forEach(files, (file) =>
      Effect.gen(function*() {
        const relative = storeRelative(repo, file.path)
        const target = absolute(store, relative)
        const record = known.get(relative)
        const trusted = !force && file.sha256 !== undefined && record !== undefined && record.sha256 === file.sha256 &&
            record.sizeBytes === file.size
          ? yield* trustedFile(store, record)
          : undefined
        const keep = trusted !== undefined
        const partialSize = force || keep
          ? 0
          : yield* fs.stat(`${target}.partial`).pipe(Effect.map((s) => Number(s.size)), Effect.orElseSucceed(() => 0))
        return { file, relative, target, keep, trusted, partialSize: partialSize <= file.size ? partialSize : 0 }
      }), { concurrency: 4 })
  })

/** Bytes of the plan already on this machine, placed at their targets: which store they came from, and an external path. */
export type Reused = ReadonlyMap<number, { readonly store: StoredBlob["store"]; readonly external?: string }>

/** Links (or copies) the bytes the hub names by sha256 that some store on this machine already holds. */
export const reuseExisting = (
  modelStore: ModelStoreService,
  store: StoreRoot,
  plan: ReadonlyArray<PlannedFile>,
  options: PullOptions
): Effect.Effect<Reused, DownloadFailed | DiskFull, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const reused = new Map<number, { readonly store: StoredBlob["store"]; readonly external?: string }>()
    if (options.force === true) return reused
    for (const [i, p] of plan.entries()) {
      if (p.keep || p.file.sha256 === undefined) continue
      const found = yield* modelStore.findBlob(p.file.sha256, store).pipe(Effect.orElseSucceed(() => Option.none<StoredBlob>()))
      // never the target itself (a file in place that failed its check is downloaded again, not re-linked)
      if (Option.isNone(found) || found.value.sizeBytes !== p.file.size || path.resolve(found.value.path) === p.target) continue
      if ((yield* ggufProblem(found.value.path, i === 0)) !== undefined) continue
      const placed = yield* placeExisting(found.value, p.target, p.file.sha256, options.copy === true).pipe(
        Effect.catchAll((e): Effect.Effect<never, DiskFull | DownloadFailed> =>
          Effect.fail(e instanceof DiskFull ? e : storeError(store, `linking ${found.value.path}`, e))
        )
      )
      reused.set(i, { store: found.value.store, ...placed })
    }
    return reused
  })

/** The manifest recording a finished pull: every file with its sha256 (the hub's, or the one computed) and mtime. */
export const manifestOf = (args: {
  readonly name: string
  readonly alias: string | undefined
  readonly repo: string
  readonly commit: string
  readonly quantization: string | undefined
  readonly facts: ModelFacts
  readonly plan: ReadonlyArray<PlannedFile>
  readonly reused: Reused
  readonly computed: ReadonlyMap<number, string>
}): Effect.Effect<Manifest, never, ScanFs> =>
  Effect.gen(function*() {
    const files = yield* Effect.forEach(args.plan, (p, i) => {
      const external = args.reused.get(i)?.external
      return Effect.map(
        mtimeOf(external ?? p.target),
        (mtimeMs): ManifestFile => ({
          ...(external !== undefined ? { external } : {}),
          path: p.relative,
          repoPath: p.file.path,
          sizeBytes: p.file.size,
          sha256: p.file.sha256 ?? args.computed.get(i) ?? p.trusted?.sha256 ?? "",
          mtimeMs,
          hubSha256: p.file.sha256 !== undefined
        })
      )
    })
    return {
      version: 1,
      name: args.name,
      ...(args.alias !== undefined ? { alias: args.alias } : {}),
      repo: args.repo,
      revision: args.commit,
      ...(args.quantization !== undefined ? { quantization: args.quantization } : {}),
      ...(args.facts.family !== undefined ? { family: args.facts.family } : {}),
      ...(args.facts.capabilities !== undefined ? { capabilities: args.facts.capabilities } : {}),
      files,
      pulledAt: new Date().toISOString()
    }
  })
