/**
 * Drives the REAL @huggingface/hub 2.17.5 against the fake hub: proves the fixture speaks the library's protocol
 * and pins down library behaviours the download code relies on (headers sent, what a slice does on a 200, how
 * errors surface, where the access token goes).
 */
import {
  downloadFile,
  fileDownloadInfo,
  fileExists,
  HubApiError,
  listFiles,
  type ListFileEntry,
  modelInfo,
  pathsInfo
} from "@huggingface/hub"
import { createHash } from "node:crypto"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { deterministicContent, type FakeHub, startFakeHub } from "./fixtures/fakeHub.js"

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

/** Reads a stream to its end; on failure reports what arrived before it and the raw rejection value. */
const readAll = async (stream: ReadableStream<Uint8Array>) => {
  const chunks: Array<Uint8Array> = []
  const reader = stream.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return { bytes: concat(chunks), error: undefined as unknown, failed: false }
      chunks.push(value)
    }
  } catch (error) {
    return { bytes: concat(chunks), error, failed: true }
  }
}

const rejectionOf = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected a rejection")
}

const Q4_SIZE = 300_000
const q4 = deterministicContent("q4")(0, Q4_SIZE).slice()
const q8 = deterministicContent("q8")(0, 70_000).slice()
const gatedBytes = deterministicContent("gated")(0, 50_000).slice()
const files: Record<string, Uint8Array> = {
  "README.md": new TextEncoder().encode("# fake model\n"),
  "config.json": new TextEncoder().encode("{\"architecture\":\"llama\"}\n"),
  "model-Q4_K_M.gguf": q4,
  "quants/model-Q8_0.gguf": q8,
  "quants/notes.txt": new TextEncoder().encode("quantised with care\n")
}

let hub: FakeHub
let commit: string

beforeAll(async () => {
  hub = await startFakeHub({ pageSize: 2 })
  const repo = await hub.addRepo({
    name: "org/model",
    files: [
      { path: "README.md", content: files["README.md"]! },
      { path: "config.json", content: files["config.json"]! },
      // Served from the generator, so this exercises the streaming path the 1 GiB benchmark file takes.
      { path: "model-Q4_K_M.gguf", size: Q4_SIZE, generate: deterministicContent("q4") },
      { path: "quants/model-Q8_0.gguf", content: q8 },
      { path: "quants/notes.txt", content: files["quants/notes.txt"]! }
    ]
  })
  commit = repo.commit
  await hub.addRepo({ name: "org/gated", gated: true, files: [{ path: "weights.gguf", content: gatedBytes }] })
})

afterAll(() => hub.close())

beforeEach(() => {
  hub.clearFaults()
  hub.resetStats()
})

const download = (path: string, extra: { accessToken?: string; revision?: string; repo?: string } = {}) =>
  downloadFile({ repo: extra.repo ?? "org/model", path, hubUrl: hub.url, ...extra })

const downloadOrFail = async (path: string) => {
  const blob = await download(path)
  if (!blob) throw new Error(`${path} not found`)
  return blob
}

describe("listing and metadata", () => {
  it("listFiles follows Link paging and reports lfs.oid = sha256 of the content", async () => {
    const entries: Array<ListFileEntry> = []
    for await (const entry of listFiles({ repo: "org/model", recursive: true, hubUrl: hub.url })) entries.push(entry)

    const listed = entries.filter((e) => e.type === "file")
    expect(listed.map((e) => e.path).sort()).toEqual(Object.keys(files).sort())
    expect(entries.filter((e) => e.type === "directory").map((e) => e.path)).toEqual(["quants"])
    for (const entry of listed) {
      const bytes = files[entry.path]!
      expect(entry.size).toBe(bytes.length)
      if (entry.path.endsWith(".gguf")) {
        expect(entry.lfs).toMatchObject({ oid: sha256(bytes), size: bytes.length })
      } else {
        expect(entry.lfs).toBeUndefined()
        expect(entry.oid).toBe(createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex"))
      }
    }
    const pages = hub.requests.filter((r) => r.url.includes("/tree/"))
    expect(pages.length).toBe(3) // 6 entries, 2 per page
    expect(pages[0]!.url).toBe(`${hub.url}/api/models/org/model/tree/main?recursive=true&expand=false`)
    expect(pages[1]!.url).toContain("cursor=")
  })

  it("listFiles without recursive lists one level; a path narrows it", async () => {
    const top: Array<string> = []
    for await (const entry of listFiles({ repo: "org/model", hubUrl: hub.url })) top.push(entry.path)
    expect(top.sort()).toEqual(["README.md", "config.json", "model-Q4_K_M.gguf", "quants"])
    const sub: Array<string> = []
    for await (const entry of listFiles({ repo: "org/model", path: "quants", hubUrl: hub.url })) sub.push(entry.path)
    expect(sub.sort()).toEqual(["quants/model-Q8_0.gguf", "quants/notes.txt"])
  })

  it("modelInfo, pathsInfo and fileExists work against the fake", async () => {
    const info = await modelInfo({ name: "org/model", hubUrl: hub.url, additionalFields: ["sha", "filePaths"] })
    expect(info).toMatchObject({ name: "org/model", gated: false, sha: commit })
    expect([...info.filePaths].sort()).toEqual(Object.keys(files).sort())
    expect(hub.requests[0]!.url).toContain("/api/models/org/model/revision/HEAD?expand=")
    expect((await modelInfo({ name: "org/gated", hubUrl: hub.url })).gated).toBe("manual")

    const paths = await pathsInfo({ repo: "org/model", paths: ["quants/model-Q8_0.gguf", "nope"], hubUrl: hub.url })
    expect(paths).toHaveLength(1)
    expect(paths[0]).toMatchObject({ type: "file", size: q8.length, lfs: { oid: sha256(q8), size: q8.length } })

    expect(await fileExists({ repo: "org/model", path: "README.md", hubUrl: hub.url })).toBe(true)
    expect(await fileExists({ repo: "org/model", path: "missing.gguf", hubUrl: hub.url })).toBe(false)
    expect(hub.requests.filter((r) => r.method === "HEAD").map((r) => new URL(r.url).pathname)).toEqual([
      "/org/model/raw/main/README.md",
      "/org/model/raw/main/missing.gguf"
    ])
  })
})

describe("downloadFile", () => {
  it("probes with Range: bytes=0-0, then streams the exact bytes; slice(n) sends a closed range and gets the tail", async () => {
    const blob = await downloadOrFail("model-Q4_K_M.gguf")
    expect(blob.size).toBe(Q4_SIZE)
    // The probe goes hub → 302 → CDN, both with the 1-byte range; undici follows the redirect itself.
    expect(hub.requests.map((r) => [r.server, r.method, r.range, r.status])).toEqual([
      ["hub", "GET", "bytes=0-0", 302],
      ["cdn", "GET", "bytes=0-0", 206]
    ])

    hub.resetStats()
    const whole = await readAll(blob.stream())
    expect(whole.failed).toBe(false)
    expect(sha256(whole.bytes)).toBe(sha256(q4))
    // The full read carries no Range header at all, and each read starts again at the hub's resolve URL.
    expect(hub.requests.map((r) => [r.server, r.range, r.status])).toEqual([
      ["hub", undefined, 302],
      ["cdn", undefined, 200]
    ])

    hub.resetStats()
    const tail = await readAll(blob.slice(123_456).stream())
    expect(tail.bytes).toEqual(q4.subarray(123_456))
    // Not an open-ended `bytes=n-`: WebBlob always sends the end it computed from the probed size.
    expect(hub.requests.map((r) => [r.server, r.range, r.status])).toEqual([
      ["hub", `bytes=123456-${Q4_SIZE - 1}`, 302],
      ["cdn", `bytes=123456-${Q4_SIZE - 1}`, 206]
    ])
    expect(hub.bytesServed).toBe(Q4_SIZE - 123_456)
  })

  it("fileDownloadInfo takes size and etag from the CDN response but keeps the hub URL", async () => {
    const info = await fileDownloadInfo({ repo: "org/model", path: "model-Q4_K_M.gguf", hubUrl: hub.url })
    expect(info).toEqual({
      size: Q4_SIZE,
      etag: `"${sha256(q4)}"`,
      xet: undefined,
      url: `${hub.url}/org/model/resolve/main/model-Q4_K_M.gguf`
    })
  })

  it("a regular (non-LFS) file is served by the hub itself", async () => {
    const blob = await downloadOrFail("README.md")
    expect(new TextDecoder().decode((await readAll(blob.stream())).bytes)).toBe("# fake model\n")
    expect(hub.requests.every((r) => r.server === "hub")).toBe(true)
  })

  it("revision main and the commit sha resolve; an unknown revision is a 404 error, not null", async () => {
    const byCommit = await download("quants/model-Q8_0.gguf", { revision: commit })
    expect(byCommit?.size).toBe(q8.length)
    const error = await rejectionOf(download("quants/model-Q8_0.gguf", { revision: "nope" }))
    expect(error).toBeInstanceOf(HubApiError)
    expect((error as HubApiError).statusCode).toBe(404)
  })

  it("a missing file is null; a missing repo is HubApiError 404", async () => {
    expect(await download("missing.gguf")).toBeNull()
    const error = await rejectionOf(download("x.gguf", { repo: "org/nothing-here" }))
    expect(error).toBeInstanceOf(HubApiError)
    expect(error).toMatchObject({ statusCode: 404, url: `${hub.url}/org/nothing-here/resolve/main/x.gguf` })
    expect((error as HubApiError).message).toContain("Repository not found")
    expect(hub.requests.at(-1)?.status).toBe(404)

    const listing = await rejectionOf((async () => {
      for await (const _ of listFiles({ repo: "org/nothing-here", hubUrl: hub.url })) break
    })())
    expect(listing).toMatchObject({ statusCode: 404 })
  })
})

describe("gated repos and where the token goes", () => {
  it("without the token: 401 HubApiError; a wrong token too; the right token works", async () => {
    const anonymous = await rejectionOf(download("weights.gguf", { repo: "org/gated" }))
    expect(anonymous).toBeInstanceOf(HubApiError)
    expect(anonymous).toMatchObject({ statusCode: 401, data: { error: expect.stringContaining("restricted") } })
    expect(await rejectionOf(download("weights.gguf", { repo: "org/gated", accessToken: "hf_wrong" })))
      .toMatchObject({ statusCode: 401 })

    const blob = await download("weights.gguf", { repo: "org/gated", accessToken: hub.accessToken })
    expect((await readAll(blob!.slice(10).stream())).bytes).toEqual(gatedBytes.subarray(10))
  })

  it("the hub gets Authorization on every request; undici strips it on the cross-origin 302, so the CDN never does", async () => {
    const blob = await download("weights.gguf", { repo: "org/gated", accessToken: hub.accessToken })
    await readAll(blob!.stream())
    await readAll(blob!.slice(1000).stream())

    const toHub = hub.requests.filter((r) => r.server === "hub")
    const toCdn = hub.requests.filter((r) => r.server === "cdn")
    expect(toHub).toHaveLength(3)
    expect(toCdn).toHaveLength(3)
    expect(toHub.every((r) => r.authorization === `Bearer ${hub.accessToken}`)).toBe(true)
    expect(toCdn.every((r) => !r.hasAuthorization)).toBe(true)
    expect(new Set(toCdn.map((r) => r.host))).toEqual(new Set([new URL(hub.cdnUrl).host]))
  })

  it("if the CDN says `X-Cache: … cloudfront`, the library reuses the CDN URL and SENDS IT THE TOKEN", async () => {
    const cloudfront = await startFakeHub({ cloudfront: true })
    try {
      await cloudfront.addRepo({ name: "org/gated", gated: true, files: [{ path: "w.gguf", content: gatedBytes }] })
      const blob = await downloadFile({
        repo: "org/gated",
        path: "w.gguf",
        hubUrl: cloudfront.url,
        accessToken: cloudfront.accessToken
      })
      expect((await readAll(blob!.slice(5).stream())).bytes).toEqual(gatedBytes.subarray(5))
      expect(cloudfront.requests.map((r) => [r.server, r.range, r.authorization])).toEqual([
        ["hub", "bytes=0-0", `Bearer ${cloudfront.accessToken}`],
        ["cdn", "bytes=0-0", undefined],
        ["cdn", `bytes=5-${gatedBytes.length - 1}`, `Bearer ${cloudfront.accessToken}`]
      ])
    } finally {
      await cloudfront.close()
    }
  })
})

describe("faults", () => {
  it("dropAfterBytes: the body stream rejects with undici's TypeError('terminated'); a slice resumes without re-transfer", async () => {
    const blob = await downloadOrFail("model-Q4_K_M.gguf")
    hub.resetStats()
    hub.setFault({ dropAfterBytes: 100_000, times: 1 })

    const first = await readAll(blob.stream())
    expect(first.failed).toBe(true)
    // Not a string: WebBlob only turns a failed *fetch* into a string; a body that dies mid-way keeps undici's error.
    expect(first.error).toBeInstanceOf(TypeError)
    expect(first.error).toMatchObject({ message: "terminated", cause: { code: "UND_ERR_SOCKET" } })
    expect(first.bytes.length).toBeLessThanOrEqual(100_000)
    expect(first.bytes).toEqual(q4.subarray(0, first.bytes.length))

    const rest = await readAll(blob.slice(first.bytes.length).stream())
    expect(rest.failed).toBe(false)
    expect(sha256(concat([first.bytes, rest.bytes]))).toBe(sha256(q4))
    expect(hub.bytesServed).toBe(100_000 + Q4_SIZE - first.bytes.length)
  })

  it("a failed fetch inside blob.stream() rejects the stream with a plain string (the error's message)", async () => {
    const blob = await downloadOrFail("model-Q4_K_M.gguf")
    hub.setFault({ rateLimit: { retryAfterSeconds: 7 }, times: 1 })
    const failed = await readAll(blob.stream())
    expect(failed.failed).toBe(true)
    expect(typeof failed.error).toBe("string")
    expect(failed.error).toContain("rate limit")
  })

  it("ignoreRange: a slice gets 200 and the stream yields the WHOLE file from byte 0, not the tail", async () => {
    const blob = await downloadOrFail("model-Q4_K_M.gguf")
    hub.setFault({ ignoreRange: true, times: 1 })
    const sliced = await readAll(blob.slice(200_000).stream())
    expect(sliced.failed).toBe(false)
    expect(sliced.bytes.length).toBe(Q4_SIZE)
    expect(sha256(sliced.bytes)).toBe(sha256(q4))
    expect(hub.requests.at(-1)).toMatchObject({ server: "cdn", range: `bytes=200000-${Q4_SIZE - 1}`, status: 200 })
  })

  it("ignoreRange on the probe leaves no Content-Range, so downloadFile itself fails", async () => {
    hub.setFault({ ignoreRange: true, times: 1 })
    expect(await rejectionOf(download("model-Q4_K_M.gguf"))).toMatchObject({ message: "Expected size information" })
  })

  it("flipByte corrupts exactly one byte, so the sha256 changes", async () => {
    const blob = await downloadOrFail("model-Q4_K_M.gguf")
    hub.setFault({ flipByte: { offset: 77_777 }, times: 1 })
    const corrupt = await readAll(blob.stream())
    expect(sha256(corrupt.bytes)).not.toBe(sha256(q4))
    const differing = [...corrupt.bytes.keys()].filter((i) => corrupt.bytes[i] !== q4[i])
    expect(differing).toEqual([77_777])
    expect(sha256((await readAll(blob.stream())).bytes)).toBe(sha256(q4)) // times: 1
  })

  it("rateLimit surfaces as HubApiError 429 (URL of whichever host answered), then succeeds", async () => {
    hub.setFault({ rateLimit: { retryAfterSeconds: 7 }, times: 1 })
    const error = await rejectionOf(download("model-Q4_K_M.gguf"))
    expect(error).toBeInstanceOf(HubApiError)
    expect((error as HubApiError).statusCode).toBe(429)
    expect((error as HubApiError).url.startsWith(hub.cdnUrl)).toBe(true)
    expect(await download("model-Q4_K_M.gguf")).not.toBeNull()

    // HubApiError keeps no headers; Retry-After is only visible to a caller's own fetch.
    hub.setFault({ rateLimit: { retryAfterSeconds: 7 }, route: "resolve", times: 1 })
    const response = await fetch(`${hub.url}/org/model/resolve/main/model-Q4_K_M.gguf`, { redirect: "manual" })
    expect(response.status).toBe(429)
    expect(response.headers.get("retry-after")).toBe("7")
    await response.body?.cancel()
  })

  it("status on a route: the tree listing fails once with 503, then works", async () => {
    hub.setFault({ status: 503, route: "tree", times: 1 })
    const list = async () => {
      const paths: Array<string> = []
      for await (const entry of listFiles({ repo: "org/model", recursive: true, hubUrl: hub.url })) {
        paths.push(entry.path)
      }
      return paths
    }
    expect(await rejectionOf(list())).toMatchObject({ statusCode: 503 })
    expect(await list()).toHaveLength(6)
  })

  it("stall goes silent after afterBytes; only an abort from the caller's fetch ends the read", async () => {
    const controller = new AbortController()
    const blob = await downloadFile({
      repo: "org/model",
      path: "model-Q4_K_M.gguf",
      hubUrl: hub.url,
      fetch: (input, init) => fetch(input, { ...init, signal: controller.signal })
    })
    hub.setFault({ stall: { afterBytes: 65_536 + 1000 } })
    const reader = blob!.stream().getReader()
    let received = 0
    while (received < 65_536 + 1000) {
      const { done, value } = await reader.read()
      if (done) throw new Error("ended early")
      received += value.length
    }
    expect(received).toBe(65_536 + 1000)
    const pending = reader.read()
    controller.abort()
    expect(await rejectionOf(pending)).toMatchObject({ name: "AbortError" })
  })

  it("slow paces the body and still delivers the exact bytes", async () => {
    const blob = await downloadOrFail("quants/model-Q8_0.gguf")
    hub.setFault({ slow: { bytesPerSecond: 350_000 } })
    const started = Date.now()
    const paced = await readAll(blob.stream())
    expect(paced.bytes).toEqual(q8)
    expect(Date.now() - started).toBeGreaterThanOrEqual(150) // 70 KB at 350 KB/s is at least 200 ms
  })
})

describe("fixture", () => {
  it("serves a file from disk and hashes generator/disk content without holding it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fakehub-"))
    try {
      const size = 3 * 1024 * 1024 + 17
      const bytes = deterministicContent(42)(0, size)
      await writeFile(join(dir, "big.gguf"), bytes)
      const info = await hub.addRepo({ name: "org/disk", files: [{ path: "big.gguf", diskPath: join(dir, "big.gguf") }] })
      expect(info.files[0]).toMatchObject({ size, sha256: sha256(bytes), lfs: true })
      const blob = await downloadFile({ repo: "org/disk", path: "big.gguf", hubUrl: hub.url })
      expect(sha256((await readAll(blob!.slice(1_000_001).stream())).bytes)).toBe(sha256(bytes.subarray(1_000_001)))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it("deterministicContent is random-access: any window equals the same bytes of a whole read", () => {
    const generate = deterministicContent("seed")
    const whole = generate(0, 4096)
    expect(generate(1001, 77)).toEqual(whole.subarray(1001, 1078))
    expect(generate(3, 1)).toEqual(whole.subarray(3, 4))
    expect(deterministicContent("other")(0, 64)).not.toEqual(whole.subarray(0, 64))
  })

  it("close() returns with a stalled download open (the stall never ends on its own), and the reader sees the connection end", async () => {
    const own = await startFakeHub()
    await own.addRepo({ name: "org/model", files: [{ path: "m.gguf", content: q4 }] })
    const blob = await downloadFile({ repo: "org/model", path: "m.gguf", hubUrl: own.url })
    own.setFault({ stall: { afterBytes: 1000 } })
    const reader = blob!.stream().getReader()
    let received = 0
    while (received < 1000) received += (await reader.read()).value?.length ?? 0
    const pending = reader.read()
    await own.close()
    expect(await rejectionOf(pending)).toMatchObject({ message: "terminated" })
  })
})
