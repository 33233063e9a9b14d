/**
 * Server: what `llmspell ps` shows, live (every 2 s while the view is shown and the tab visible):
 * the server's load (generations running and waiting, requests in flight), its memory and the
 * machine's, each loaded model with its sequences busy/total, size, context, device and when it
 * unloads (and the per-model figures later servers add: requests, tokens/s, cache hit rate); and
 * the headline figures of /metrics when the server exposes it.
 */
import { useEffect, useState } from "preact/hooks"
import { ApiError, errorMessage, request, requestJson } from "../api.js"
import { ErrorLine } from "../components.js"
import { formatBytes, formatCount, formatDuration, unloadsIn } from "../lib/format.js"
import { type Family, headlines, parseMetrics, total } from "../lib/metrics.js"
import type { PsReply } from "../types.js"

const EVERY_MS = 2000

/** The Server view. */
export function ServerView({ active, onChange }: { readonly active: boolean; readonly onChange: () => Promise<void> }) {
  const [ps, setPs] = useState<PsReply | undefined>(undefined)
  const [metrics, setMetrics] = useState<ReadonlyArray<Family> | "absent" | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const [updated, setUpdated] = useState<Date | undefined>(undefined)
  const [busy, setBusy] = useState<string | undefined>(undefined)
  const [tick, setTick] = useState(0)

  useEffect(() => {
    if (!active) return
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    let polls = 0
    let metricsAbsent = false
    const poll = async () => {
      if (document.hidden) return void (timer = setTimeout(poll, EVERY_MS))
      try {
        const reply = await requestJson<PsReply>("/ui/api/ps")
        if (stopped) return
        setPs(reply)
        setError(undefined)
        setUpdated(new Date())
        // a server without /metrics is asked again only now and then (each ask is a line in its access log)
        if (!metricsAbsent || polls++ % 15 === 0) {
          const response = await request("/metrics")
          if (stopped) return
          metricsAbsent = response.status === 404
          if (metricsAbsent) setMetrics("absent")
          else if (response.ok) setMetrics(parseMetrics(await response.text()))
          else setMetrics(undefined)
        }
      } catch (e) {
        if (!stopped && !(e instanceof ApiError && e.status === 401)) setError(`Could not reach the server: ${(e as Error).message}`)
      }
      if (!stopped) timer = setTimeout(poll, EVERY_MS)
    }
    void poll()
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  }, [active, tick])

  const unload = async (spec: string) => {
    setBusy(spec)
    try {
      const response = await request("/api/generate", { method: "POST", json: { model: spec, keep_alive: 0, stream: false } })
      if (!response.ok) setError(`Unload of ${spec} failed: ${await errorMessage(response)}`)
    } catch (e) {
      setError((e as Error).message)
    }
    setBusy(undefined)
    setTick((t) => t + 1)
    await onChange()
  }

  const now = Date.now()
  const s = ps?.server
  const m = ps?.machine
  return (
    <div class="view server">
      <h1>Server</h1>
      <p class="muted small" aria-live="off">{updated !== undefined ? `Live · updated ${updated.toLocaleTimeString()}` : "Loading…"}</p>
      <ErrorLine message={error} />
      {s !== undefined && m !== undefined
        ? (
          <dl class="stats">
            <div><dt>Generating</dt><dd data-stat="running">{s.running} of {s.concurrency}</dd></div>
            <div><dt>Waiting</dt><dd data-stat="queued">{s.queued} <span class="muted small">(up to {s.maxQueue})</span></dd></div>
            <div><dt>Requests in flight</dt><dd data-stat="inflight">{s.inFlight}</dd></div>
            <div><dt>Server memory</dt><dd>{formatBytes(s.rssBytes)}</dd></div>
            <div><dt>Machine memory free</dt><dd>{formatBytes(m.freeMemoryBytes)} <span class="muted small">of {formatBytes(m.totalMemoryBytes)}</span></dd></div>
            <div><dt>Load average</dt><dd>{m.loadAverage.map((x) => x.toFixed(2)).join(" ")} <span class="muted small">({m.cpus} cores)</span></dd></div>
            <div><dt>Up</dt><dd>{formatDuration(s.uptimeSeconds * 1000)}</dd></div>
          </dl>
        )
        : null}
      <h2>Loaded models</h2>
      {ps !== undefined && ps.models.length === 0 ? <p class="muted">No model is loaded.</p> : null}
      {ps !== undefined && ps.models.length > 0
        ? (
          <table class="ps-table">
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Memory</th>
                <th scope="col">Context</th>
                <th scope="col">Sequences busy</th>
                <th scope="col">Device</th>
                <th scope="col">Unloads</th>
                {ps.models.some((x) => x.requests !== undefined) ? <th scope="col">Requests</th> : null}
                {ps.models.some((x) => x.tokensPerSecond !== undefined) ? <th scope="col">Tokens/s</th> : null}
                {ps.models.some((x) => x.cacheHitRate !== undefined) ? <th scope="col">Cache hits</th> : null}
                <th scope="col"><span class="sr-only">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {ps.models.map((x) => (
                <tr key={`${x.spec}/${x.purpose ?? ""}`} data-spec={x.spec}>
                  <th scope="row" data-label="Model"><code>{x.spec}</code>{x.purpose === "embedding" ? <span class="chip">embedding</span> : null}</th>
                  <td data-label="Memory">{x.sizeBytes !== undefined ? formatBytes(x.sizeBytes) : "—"}{x.vramBytes ? <span class="muted small"> ({formatBytes(x.vramBytes)} VRAM)</span> : null}</td>
                  <td data-label="Context">{x.contextLength !== undefined ? formatCount(x.contextLength) : "—"}</td>
                  <td data-label="Sequences busy" data-stat="sequences">
                    {x.sequences !== undefined
                      ? <><meter min={0} max={x.sequences.total} value={x.sequences.busy} aria-label={`${x.sequences.busy} of ${x.sequences.total} sequences busy`} /> {x.sequences.busy}/{x.sequences.total}</>
                      : x.activeRequests !== undefined ? `${x.activeRequests} requests` : "—"}
                  </td>
                  <td data-label="Device">{x.device ?? "—"}</td>
                  <td data-label="Unloads">{unloadsIn(x.expiresAt, (x.sequences?.busy ?? x.activeRequests ?? 0) > 0, now)}</td>
                  {ps.models.some((y) => y.requests !== undefined) ? <td data-label="Requests">{x.requests !== undefined ? formatCount(x.requests) : "—"}</td> : null}
                  {ps.models.some((y) => y.tokensPerSecond !== undefined) ? <td data-label="Tokens/s">{x.tokensPerSecond !== undefined ? x.tokensPerSecond.toFixed(1) : "—"}</td> : null}
                  {ps.models.some((y) => y.cacheHitRate !== undefined) ? <td data-label="Cache hits">{x.cacheHitRate !== undefined ? `${Math.round(x.cacheHitRate * 100)}%` : "—"}</td> : null}
                  <td class="row-actions">
                    <button type="button" disabled={busy === x.spec} onClick={() => void unload(x.spec)} aria-label={`Unload ${x.spec}`}>{busy === x.spec ? "Unloading…" : "Unload"}</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )
        : null}
      <h2>Metrics</h2>
      {metrics === "absent" ? <p class="muted">This server does not expose /metrics.</p> : null}
      {metrics !== undefined && metrics !== "absent"
        ? (
          <>
            <dl class="stats">
              {headlines(metrics).map((h) => (
                <div key={h.label}>
                  <dt>{h.label}</dt>
                  <dd>{h.unit === "seconds" ? formatDuration(h.value * 1000) : h.unit === "bytes" ? formatBytes(h.value) : formatCount(h.value)}</dd>
                </div>
              ))}
            </dl>
            <details>
              <summary>All metrics ({metrics.length})</summary>
              <table class="metrics-table">
                <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Value</th></tr></thead>
                <tbody>
                  {metrics.map((f) => (
                    <tr key={f.name}>
                      <td><code>{f.name}</code>{f.help !== undefined ? <div class="muted small">{f.help}</div> : null}</td>
                      <td>{f.type}</td>
                      <td>{f.type === "histogram" || f.type === "summary" ? `${formatCount(f.samples.filter((x) => x.name.endsWith("_count")).reduce((sum, x) => sum + x.value, 0))} observations` : formatCount(total(f))}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </details>
          </>
        )
        : null}
    </div>
  )
}
