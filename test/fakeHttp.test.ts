/**
 * The fake-server helper every fake stands on (test/fixtures/fakeHttp.ts), driven by the real fetch
 * (undici): routes and responders, the request log, each fault knob at its point, the signals a test
 * waits on instead of time, and a close() that does not wait for stalled or held connections.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { type FakeHttp, gate, startFakeHttp } from "./fixtures/fakeHttp.js"

let http: FakeHttp

beforeEach(async () => {
  http = await startFakeHttp({ errorBody: (status) => ({ message: `no (${status})` }) })
  http.route("POST", "/echo", (x) => x.json(200, { got: x.body }))
  http.route("GET", "/lines", (x) => x.ndjson([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]))
  http.route("GET", "/events", (x) => x.sse([{ event: "start", data: { a: 1 } }, { data: { b: 2 } }, { data: "raw" }], { trailer: "data: [DONE]\n\n" }))
  http.route("GET", /^\/items\/\d+$/, (x) => x.json(200, { item: x.path.split("/").at(-1) }))
})

afterEach(async () => {
  await http.close()
})

const post = (path: string, body: string, signal?: AbortSignal) =>
  fetch(`${http.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body, ...(signal ? { signal } : {}) })

/** Reads `n` NDJSON lines from a streamed body and returns them with the reader (to carry on or cancel). */
const readLines = async (response: Response, n: number) => {
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let text = ""
  while (text.split("\n").length - 1 < n) {
    const { done, value } = await reader.read()
    if (done) break
    text += decoder.decode(value, { stream: true })
  }
  return { lines: text.split("\n").filter((l) => l !== ""), reader }
}

const rejection = async (promise: Promise<unknown>): Promise<Error & { cause?: { code?: string } }> => {
  try {
    await promise
  } catch (error) {
    return error as Error & { cause?: { code?: string } }
  }
  throw new Error("expected a rejection")
}

describe("routes, responders and the log", () => {
  it("routes by method and path (string or RegExp), records each exchange with its parsed body", async () => {
    expect(await (await post("/echo", `{"x":[1,2]}`)).json()).toEqual({ got: { x: [1, 2] } })
    expect(await (await fetch(`${http.url}/items/42`)).json()).toEqual({ item: "42" })
    const missing = await fetch(`${http.url}/echo`) // a GET: no route
    expect(missing.status).toBe(404)
    expect(await missing.json()).toEqual({ message: "no (404)" })
    const notJson = await post("/echo", "{nope")
    expect(await notJson.json()).toEqual({ got: "{nope" })
    expect(http.exchanges.map((x) => [x.id, x.method, x.path, x.status, x.records])).toEqual([
      [1, "POST", "/echo", 200, 1],
      [2, "GET", "/items/42", 200, 1],
      [3, "GET", "/echo", 404, 0],
      [4, "POST", "/echo", 200, 1]
    ])
    expect(http.exchanges[3]).toMatchObject({ invalidJson: true, bodyText: "{nope" })
    http.clearLog()
    expect(http.exchanges).toHaveLength(0)
  })

  it("NDJSON and SSE (event names, trailer) as the wire formats say, one record per line or event", async () => {
    expect(await (await fetch(`${http.url}/lines`)).text()).toBe(`{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}\n`)
    const events = await fetch(`${http.url}/events`)
    expect(events.headers.get("content-type")).toBe("text/event-stream")
    expect(await events.text()).toBe(`event: start\ndata: {"a":1}\n\ndata: {"b":2}\n\ndata: raw\n\ndata: [DONE]\n\n`)
    const x = await http.reached("closed", { route: "/events" })
    expect(x).toMatchObject({ records: 3, streaming: true, ended: true, aborted: false })
  })
})

describe("faults", () => {
  it("status: the error body (given, computed or the server's), headers, `times`, then normal answers", async () => {
    http.fault({ route: "/echo", kind: "status", status: 429, headers: { "retry-after": "7" }, times: 1 })
    const limited = await post("/echo", "{}")
    expect([limited.status, limited.headers.get("retry-after"), await limited.json()]).toEqual([429, "7", { message: "no (429)" }])
    expect((await post("/echo", "{}")).status).toBe(200)
    const remove = http.fault({ route: "/echo", kind: "status", status: 500, body: (x) => ({ about: x.body }) })
    expect(await (await post("/echo", `"this"`)).json()).toEqual({ about: "this" })
    expect(await (await post("/echo", `"that"`)).json()).toEqual({ about: "that" })
    remove()
    expect((await post("/echo", "{}")).status).toBe(200)
  })

  it("hold at the request: nothing is sent until the test opens the gate", async () => {
    const open = gate()
    http.fault({ route: "/echo", kind: "hold", until: open })
    const answer = post("/echo", "1")
    const x = await http.reached("held", { route: "/echo" })
    expect(x.status).toBeUndefined()
    expect(x.held).toBe(true)
    open.open()
    expect(await (await answer).json()).toEqual({ got: 1 })
    expect(x).toMatchObject({ held: false, holds: 1, status: 200 })
  })

  it("hold mid-stream: the client has exactly the records before the gate, the rest after it opens", async () => {
    const open = gate()
    http.fault({ route: "/lines", kind: "hold", after: 2, until: open })
    const response = await fetch(`${http.url}/lines`)
    const x = await http.reached("held")
    const { lines, reader } = await readLines(response, 2)
    expect(lines).toEqual([`{"n":1}`, `{"n":2}`])
    expect(x.records).toBe(2)
    open.open()
    let rest = ""
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      rest += new TextDecoder().decode(value)
    }
    expect(rest).toBe(`{"n":3}\n{"n":4}\n`)
  })

  it("drop after N records: the client has them, then 'terminated'; drop at the request: 'fetch failed'", async () => {
    http.fault({ route: "/lines", kind: "drop", after: 2, times: 1 })
    const response = await fetch(`${http.url}/lines`)
    const { lines, reader } = await readLines(response, 2)
    expect(lines).toHaveLength(2)
    expect((await rejection(reader.read())).message).toBe("terminated")
    expect(await http.reached("dropped")).toMatchObject({ records: 2, aborted: false })
    http.fault({ route: "/echo", kind: "drop", times: 1 })
    const refused = await rejection(post("/echo", "{}"))
    expect(refused.message).toBe("fetch failed")
  })

  it("stall after N records: silence until the client leaves, which the fake signals as an abort", async () => {
    http.fault({ route: "/lines", kind: "stall", after: 1 })
    const controller = new AbortController()
    const aborted = http.next("aborted", { route: "/lines" })
    const response = await fetch(`${http.url}/lines`, { signal: controller.signal })
    const { lines } = await readLines(response, 1)
    expect(lines).toEqual([`{"n":1}`])
    controller.abort()
    expect(await aborted).toMatchObject({ records: 1, ended: false, dropped: false, closed: true })
  })

  it("garbage inserts raw text and carries on; end cuts the stream cleanly without its trailer; malformed breaks a JSON body", async () => {
    http.fault({ route: "/lines", kind: "garbage", after: 1, text: "<html>\n", times: 1 })
    expect(await (await fetch(`${http.url}/lines`)).text()).toBe(`{"n":1}\n<html>\n{"n":2}\n{"n":3}\n{"n":4}\n`)
    http.fault({ route: "/events", kind: "end", after: 2, times: 1 })
    expect(await (await fetch(`${http.url}/events`)).text()).toBe(`event: start\ndata: {"a":1}\n\ndata: {"b":2}\n\n`)
    http.fault({ route: "/echo", kind: "malformed", times: 1 })
    const broken = await post("/echo", `{"k":"v"}`)
    expect(broken.status).toBe(200)
    await expect(broken.json()).rejects.toThrow(SyntaxError)
  })

  it("a fault can pick one request out of several (by id or predicate), so concurrent requests are told apart", async () => {
    const open = gate()
    http.fault({ route: "/echo", kind: "hold", until: open, match: (x) => x.body === "first" })
    const first = post("/echo", `"first"`)
    const held = await http.reached("held")
    expect(held.body).toBe("first")
    expect(await (await post("/echo", `"second"`)).json()).toEqual({ got: "second" })
    expect(held.status).toBeUndefined()
    open.open()
    expect(await (await first).json()).toEqual({ got: "first" })
    // "request N reached point X"
    expect(await http.reached("end", { id: held.id })).toBe(held)
  })
})

describe("signals and shutdown", () => {
  it("reached() sees what already happened; next() only what happens from now on", async () => {
    await (await fetch(`${http.url}/lines`)).text()
    const done = await http.reached({ records: 4 }, { route: "/lines" })
    expect(done.id).toBe(1)
    const upcoming = http.next({ records: 2 }, { route: "/lines" })
    await (await fetch(`${http.url}/lines`)).text()
    expect((await upcoming).id).toBe(2)
  })

  it("close() returns with stalled and held connections open, and their clients see the connection end", async () => {
    http.fault({ route: "/lines", kind: "stall", after: 1, times: 1 })
    http.fault({ route: "/echo", kind: "hold", until: gate(), times: 1 })
    const stalled = await fetch(`${http.url}/lines`)
    const { reader } = await readLines(stalled, 1)
    const held = rejection(post("/echo", "{}"))
    await http.reached("held")
    expect(http.openConnections).toBe(2)
    await http.close()
    expect(http.openConnections).toBe(0)
    expect((await rejection(reader.read())).message).toBe("terminated")
    expect((await held).message).toBe("fetch failed")
    expect(http.exchanges.every((x) => x.closed && x.aborted)).toBe(true)
  })
})
