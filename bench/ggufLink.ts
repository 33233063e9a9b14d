/**
 * `node --import tsx bench/ggufLink.ts`: what crossing the GGUF worker link costs per message, step
 * by step, in CPU time (so a busy machine changes little): the worker's Schema encode of a batch,
 * Node's IPC (JSON serialization, the pipe, the parse, in both processes), the host's decode and the
 * request's queue up to the LoaderEvents its stream emits. Messages are `Text` chunks of 16
 * characters (a few tokens); "batch of 4" is what one event-loop turn of 4 sequences sends as one
 * IPC message. Prints a markdown table; `--write` replaces its section of BENCHMARKS.md.
 *
 * Options: --messages N (default 100000), --write. Spawns itself with --child for the IPC rows.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Queue from "effect/Queue"
import { fork } from "node:child_process"
import { readFile, writeFile } from "node:fs/promises"
import * as os from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { decodeFromWorkerBatch, encodeFromWorkerBatch, type FromWorker } from "../src/layers/gguf/workerProtocol.js"

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const MESSAGES = arg("messages", 100_000)
const text = (i: number): FromWorker => ({ _tag: "Text", id: i % 4, text: "hello, llama! ab" })

/** CPU time (µs, user + system) of `f`, per unit. */
const cpuPer = (units: number, f: () => void) => {
  const before = process.cpuUsage()
  f()
  const used = process.cpuUsage(before)
  return (used.user + used.system) / units
}

if (process.argv.includes("--child")) {
  // the worker's side: encode and send as fast as the channel takes it, then report CPU time
  const batch = Number(process.argv[process.argv.indexOf("--batch") + 1])
  const before = process.cpuUsage()
  let sent = 0
  const pump = () => {
    while (sent < MESSAGES) {
      const messages = Array.from({ length: batch }, (_, k) => text(sent + k))
      sent += batch
      // back-pressure: wait for the channel to drain before it buffers too much
      if (!process.send!(encodeFromWorkerBatch(messages))) return void setImmediate(pump)
    }
    const used = process.cpuUsage(before)
    process.send!({ done: (used.user + used.system) / MESSAGES })
  }
  pump()
} else {
  const single = Array.from({ length: MESSAGES }, (_, i) => [text(i)])
  const batched = Array.from({ length: MESSAGES / 4 }, (_, i) => [0, 1, 2, 3].map((k) => text(4 * i + k)))
  const rows: Array<[string, number, number]> = []
  const step = (name: string, f1: () => void, f4: () => void) => rows.push([name, cpuPer(MESSAGES, f1), cpuPer(MESSAGES, f4)])

  // warm the JIT on each path once
  for (let w = 0; w < 2; w++) for (let i = 0; i < 2000; i++) decodeFromWorkerBatch(JSON.parse(JSON.stringify(encodeFromWorkerBatch(single[i]!))))

  const encoded1 = single.map((b) => encodeFromWorkerBatch(b))
  const encoded4 = batched.map((b) => encodeFromWorkerBatch(b))
  step("worker: Schema encode of the batch", () => single.forEach((b) => encodeFromWorkerBatch(b)), () => batched.forEach((b) => encodeFromWorkerBatch(b)))
  const json1 = encoded1.map((e) => JSON.stringify(e))
  const json4 = encoded4.map((e) => JSON.stringify(e))
  step("worker: JSON serialization (process.send)", () => encoded1.forEach((e) => JSON.stringify(e)), () => encoded4.forEach((e) => JSON.stringify(e)))
  step("host: JSON parse (the IPC channel)", () => json1.forEach((j) => JSON.parse(j)), () => json4.forEach((j) => JSON.parse(j)))
  const parsed1 = json1.map((j) => JSON.parse(j) as unknown)
  const parsed4 = json4.map((j) => JSON.parse(j) as unknown)
  step("host: Schema decode of the batch", () => parsed1.forEach((p) => decodeFromWorkerBatch(p)), () => parsed4.forEach((p) => decodeFromWorkerBatch(p)))

  // the host's dispatch: each message to its request's queue, then the request's stream takes
  // what is there and maps it to LoaderEvents (what workerLoader's pull does)
  const dispatch = (batches: ReadonlyArray<unknown>) =>
    Effect.runSync(Effect.gen(function*() {
      const queues = yield* Effect.forEach([0, 1, 2, 3], () => Queue.unbounded<FromWorker>())
      let events = 0
      for (const raw of batches) {
        const decoded = decodeFromWorkerBatch(raw)
        if (Either.isLeft(decoded)) throw new Error("bad batch")
        for (const m of decoded.right) Queue.unsafeOffer(queues[(m as { id: number }).id]!, m)
        for (const q of queues) {
          const taken = yield* Queue.takeAll(q)
          for (const m of Chunk.toReadonlyArray(taken)) if (m._tag === "Text") events += m.text.length > 0 ? 1 : 0
        }
      }
      return events
    }))
  step("host: decode + route + queue + take (the request's stream)", () => dispatch(parsed1), () => dispatch(parsed4))

  /** The whole link through a real IPC channel: the child's CPU per message and this process's. */
  const throughPipe = (batch: number) =>
    new Promise<[number, number]>((resolve, reject) => {
      const child = fork(fileURLToPath(import.meta.url), ["--child", "--batch", String(batch), "--messages", String(MESSAGES)], {
        execArgv: ["--import", "tsx"],
        serialization: "json",
        stdio: ["ignore", "inherit", "inherit", "ipc"]
      })
      let before: NodeJS.CpuUsage | undefined
      child.on("message", (raw) => {
        before ??= process.cpuUsage()
        if (typeof raw === "object" && raw !== null && "done" in raw) {
          const used = process.cpuUsage(before)
          child.kill()
          return resolve([(raw as { done: number }).done, (used.user + used.system) / MESSAGES])
        }
        decodeFromWorkerBatch(raw)
      })
      child.on("error", reject)
    })
  const [child1, host1] = await throughPipe(1)
  const [child4, host4] = await throughPipe(4)
  rows.push(["through the pipe, the worker's process (encode + send)", child1, child4])
  rows.push(["through the pipe, the host's process (receive + parse + decode)", host1, host4])

  const section = [
    "## GGUF worker link: the cost per message (bench/ggufLink.ts)",
    "",
    "Command: `node --import tsx bench/ggufLink.ts [--messages N] [--write]`. CPU time (user + system) per `Text` message of",
    `16 characters, ${MESSAGES} messages, one per batch (one sequence per event-loop turn) or four (four sequences' text in`,
    "one turn); the pipe rows fork a child that sends as fast as the channel takes it. CPU time, not wall time: a busy",
    `machine changes it little. Machine: ${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? "?"}, Node ${process.version}, ` +
    `${new Date().toISOString().slice(0, 10)}, load average ${os.loadavg()[0]!.toFixed(1)} (shared with other engineers' jobs).`,
    "",
    "| step | µs per message, 1 per batch | µs per message, 4 per batch |",
    "|---|---:|---:|",
    ...rows.map(([name, a, b]) => `| ${name} | ${a.toFixed(2)} | ${b.toFixed(2)} |`),
    ""
  ].join("\n")
  process.stdout.write(`${section}\n`)
  if (process.argv.includes("--write")) {
    const path = join(fileURLToPath(new URL("..", import.meta.url)), "BENCHMARKS.md")
    const current = await readFile(path, "utf8")
    const start = current.indexOf("## GGUF worker link: the cost per message")
    const next = start >= 0 ? current.indexOf("\n## ", start + 1) : -1
    const updated = start < 0 ? `${current.trimEnd()}\n\n${section}` : `${current.slice(0, start)}${section}${next >= 0 ? current.slice(next) : ""}`
    await writeFile(path, updated.endsWith("\n") ? updated : `${updated}\n`)
  }
}
