/**
 * `llmspell serve` stops whatever its clients do, through the built CLI and raw `node:net` sockets:
 * pipelined junk after a request, a DELETE with a body and no Content-Length, a client holding a
 * partial body, slow headers, an idle keep-alive connection, a half-open socket, a client that
 * never reads. SIGTERM drains what is in flight within --drain-timeout (requests arriving
 * meanwhile get 503), then closes every connection and exits 0. The tests assert the order of
 * events (stopping → idle connections closed → the rest) and that the process exits; the long
 * --drain-timeouts are there so a server that waited for the deadline instead of for its
 * requests would be caught by the hang guard, not by a clock.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { startServe } from "./fixtures/serveHarness.js"
import { bin, ensureBuilt, isolatedEnv } from "./support/runCli.js"

let dir: string
let fake: FakeOllama
const children: Array<ChildProcess> = []

// "flood": enough NDJSON (one record a word) to fill any socket buffer of a client that never reads
const FLOOD = Array.from({ length: 100_000 }, (_, i) => `w${i}`).join(" ")

beforeAll(async () => {
  ensureBuilt()
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-shutdown-"))
  fake = await startFakeOllama({ models: [fakeModel("agent")], answer: (input) => (input.prompt.includes("flood") ? FLOOD : `You said: ${input.prompt}`) })
})

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  await fake?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** A `llmspell serve` child, its stderr, and the order of what happened to it. */
interface Served {
  readonly port: number
  readonly url: string
  readonly events: Array<string>
  readonly exited: Promise<number | null>
  readonly stderr: () => string
  /** Resolves once the server has said it is stopping. */
  readonly stopping: Promise<void>
  readonly child: ChildProcess
}

let serial = 0
const startCli = async (args: ReadonlyArray<string>): Promise<Served> => {
  const home = join(dir, `home-${serial++}`)
  const child = spawn(process.execPath, [bin, "serve", "--port", "0", ...args], {
    cwd: dir,
    env: isolatedEnv(home, { OLLAMA_HOST: fake.url, LLMSPELL_MODELS_DIR: join(dir, "models") }),
    stdio: ["ignore", "pipe", "pipe"]
  })
  children.push(child)
  const events: Array<string> = []
  let stderr = ""
  let onStopping: () => void = () => {}
  const stopping = new Promise<void>((resolve) => (onStopping = resolve))
  const exited = new Promise<number | null>((resolve) =>
    child.on("close", (code) => {
      events.push("exit")
      resolve(code)
    })
  )
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on("data", (c: Buffer) => {
      stderr += c.toString("utf8")
      const match = /listening on (http:\/\/\S+)/.exec(stderr)
      if (match) resolve(match[1]!)
      if (stderr.includes("stopping") && !events.includes("stopping")) {
        events.push("stopping")
        onStopping()
      }
    })
    child.on("close", () => reject(new Error(`serve exited early: ${stderr}`)))
  })
  return { port: Number(new URL(url).port), url, events, exited, stderr: () => stderr, stopping, child }
}

/** A raw connection: what it received, and an event in `events` when it closes. */
const connect = (served: Served, name: string) =>
  new Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }>((resolve, reject) => {
    let received = ""
    const socket = net.connect(served.port, "127.0.0.1")
    const closed = new Promise<void>((done) =>
      socket.on("close", () => {
        served.events.push(`closed:${name}`)
        done()
      })
    )
    socket.on("data", (c: Buffer) => void (received += c.toString("latin1")))
    socket.on("error", () => {})
    socket.once("connect", () => resolve({ socket, received: () => received, closed }))
    socket.once("error", reject)
  })

/** Resolves once `text` has been received on the connection. */
const receivedText = (conn: { socket: net.Socket; received: () => string }, text: string) =>
  new Promise<void>((resolve) => {
    const check = () => {
      if (conn.received().includes(text)) {
        conn.socket.off("data", check)
        resolve()
      }
    }
    conn.socket.on("data", check)
    check()
  })

const HOST = "Host: 127.0.0.1\r\n"

describe("malformed requests do not keep serve from stopping", () => {
  it("pipelined junk after a request: the request is answered, the junk gets 400, and SIGTERM stops the server (exit 0)", async () => {
    const served = await startCli(["--drain-timeout", "600"])
    const junk = await connect(served, "junk")
    junk.socket.write(`GET /api/version HTTP/1.1\r\n${HOST}\r\nJUNK`)
    await junk.closed
    expect(junk.received()).toMatch(/^HTTP\/1\.1 200 OK/)
    expect(junk.received()).toContain(`"version"`)
    expect(junk.received()).toContain("HTTP/1.1 400 Bad Request")
    // still serving
    expect((await fetch(`${served.url}/api/version`)).status).toBe(200)
    served.child.kill("SIGTERM")
    expect(await served.exited).toBe(0)
    expect(served.events).toEqual(["closed:junk", "stopping", "exit"])
  }, 120_000)

  it("a DELETE with a body and no Content-Length: answered, the body read as a malformed request, and SIGTERM stops the server", async () => {
    const served = await startCli(["--drain-timeout", "600"])
    const del = await connect(served, "delete")
    del.socket.write(`DELETE /api/delete HTTP/1.1\r\n${HOST}Content-Type: application/json\r\n\r\n{"model":"agent@ollama"}`)
    await del.closed
    expect(del.received()).toMatch(/^HTTP\/1\.1 400/)
    expect(del.received()).toContain("body is empty")
    expect(fake.state.models.map((m) => m.name)).toContain("agent:latest")
    served.child.kill("SIGTERM")
    expect(await served.exited).toBe(0)
  }, 120_000)
})

describe("the drain", () => {
  it("a request in flight holds the drain; one arriving meanwhile gets 503; an idle keep-alive connection is closed at once", async () => {
    const served = await startCli(["--drain-timeout", "600"])
    const idle = await connect(served, "idle")
    idle.socket.write(`GET /api/version HTTP/1.1\r\n${HOST}\r\n`)
    await receivedText(idle, `"version"`)
    const partial = await connect(served, "partial")
    const body = `{"model":"agent@ollama","messages":[{"role":"user","content":"hi"}],"stream":false}`
    partial.socket.write(`POST /api/chat HTTP/1.1\r\n${HOST}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 9)}`)
    // the server has the request (its Content-Length is known) once a second one on another
    // connection is answered: requests are handled in arrival order by one event loop
    expect((await fetch(`${served.url}/api/version`)).status).toBe(200)
    served.child.kill("SIGTERM")
    await served.stopping
    await idle.closed
    const late = await connect(served, "late")
    late.socket.write(`GET /api/tags HTTP/1.1\r\n${HOST}\r\n`)
    await late.closed
    expect(late.received()).toMatch(/^HTTP\/1\.1 503/)
    expect(late.received().toLowerCase()).toContain("retry-after")
    expect(late.received()).toContain("shutting down")
    // the request in flight finishes and is answered; then the server exits
    partial.socket.write(body.slice(9))
    await partial.closed
    expect(partial.received()).toMatch(/^HTTP\/1\.1 200/)
    expect(partial.received()).toContain("You said: hi")
    expect(await served.exited).toBe(0)
    expect(served.events.indexOf("stopping")).toBeLessThan(served.events.indexOf("closed:idle"))
    expect(served.events.indexOf("closed:idle")).toBeLessThan(served.events.indexOf("closed:partial"))
  }, 120_000)

  it("a client holding a partial body (Content-Length 100, 9 bytes sent) is cut at --drain-timeout, and the server exits 0", async () => {
    const served = await startCli(["--drain-timeout", "1"])
    const partial = await connect(served, "partial")
    partial.socket.write(`POST /api/chat HTTP/1.1\r\n${HOST}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model":`)
    expect((await fetch(`${served.url}/api/version`)).status).toBe(200)
    served.child.kill("SIGTERM")
    expect(await served.exited).toBe(0)
    await partial.closed
    // cut by the server at the deadline (the process then exits; which of the two this process
    // hears first is the kernel's business)
    expect(served.events.slice(0, 1)).toEqual(["stopping"])
    expect(served.events).toContain("closed:partial")
    expect(partial.received()).toBe("")
  }, 120_000)

  it("a client that never reads a long stream is cut at --drain-timeout, and the server exits 0", async () => {
    const served = await startCli(["--drain-timeout", "1"])
    const reader = await connect(served, "never-reads")
    const body = JSON.stringify({ model: "agent@ollama", messages: [{ role: "user", content: "flood" }] })
    reader.socket.write(`POST /api/chat HTTP/1.1\r\n${HOST}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
    await receivedText(reader, "w0")
    reader.socket.pause()
    served.child.kill("SIGTERM")
    expect(await served.exited).toBe(0)
    expect(served.events.indexOf("stopping")).toBeLessThan(served.events.indexOf("exit"))
    // the connection was cut: the stream never ended (a paused socket reports its close once read)
    reader.socket.resume()
    await reader.closed
    expect(reader.received()).not.toContain(`"done":true`)
  }, 120_000)

  it("with nothing in flight, slow headers, a half-open socket and idle connections do not hold the drain", async () => {
    const served = await startCli(["--drain-timeout", "600"])
    const slow = await connect(served, "slow-headers")
    slow.socket.write(`GET /api/version HTTP/1.1\r\n${HOST}X-Slow: a`)
    const halfOpen = await connect(served, "half-open")
    halfOpen.socket.write(`GET /api/version HTTP/1.1\r\n${HOST}\r\n`)
    halfOpen.socket.end()
    await receivedText(halfOpen, `"version"`)
    const idle = await connect(served, "idle")
    idle.socket.write(`GET /api/tags HTTP/1.1\r\n${HOST}\r\n`)
    await receivedText(idle, `"models"`)
    served.child.kill("SIGTERM")
    expect(await served.exited).toBe(0)
    await Promise.all([slow.closed, halfOpen.closed, idle.closed])
    expect(served.events.filter((e) => e.startsWith("closed:")).sort()).toEqual(["closed:half-open", "closed:idle", "closed:slow-headers"])
    expect(served.events.at(-1)).toBe("exit")
  }, 120_000)
})

describe("no request outlives its connection (in process: the server's in-flight count)", () => {
  it("after junk, resets, a disconnect mid-upload or mid-answer, every request is done and the server closes", async () => {
    const serve = await startServe({ dir: join(dir, "in-process"), ollamaUrl: fake.url })
    try {
      const port = Number(new URL(serve.url).port)
      const served = { port, url: serve.url, events: [] as Array<string> } as unknown as Served
      const scripts: ReadonlyArray<[string, (socket: net.Socket) => void]> = [
        ["pipelined junk", (s) => s.write(`GET /api/version HTTP/1.1\r\n${HOST}\r\nJUNK`)],
        ["reset after a request", (s) => {
          s.write(`GET /api/tags HTTP/1.1\r\n${HOST}\r\n`)
          s.resetAndDestroy()
        }],
        ["HEAD, then gone", (s) => {
          s.write(`HEAD / HTTP/1.1\r\n${HOST}\r\n`)
          s.destroy()
        }],
        ["disconnect mid-upload", (s) => {
          s.write(`POST /api/chat HTTP/1.1\r\n${HOST}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model":`)
          s.end()
        }],
        ["gone mid-answer", (s) => {
          const body = JSON.stringify({ model: "agent@ollama", messages: [{ role: "user", content: "flood" }] })
          s.write(`POST /api/chat HTTP/1.1\r\n${HOST}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
          s.once("data", () => s.destroy())
        }]
      ]
      for (const [name, script] of scripts) {
        const conn = await connect(served, name)
        script(conn.socket)
        await conn.closed
        const load = await serve.waitForLoad((l) => l.inFlight === 0 && l.running === 0)
        expect(load, name).toEqual({ running: 0, queued: 0, inFlight: 0 })
      }
      expect((await fetch(`${serve.url}/api/version`)).status).toBe(200)
    } finally {
      await serve.close()
    }
  }, 120_000)
})
