/**
 * Models: every model of every instance and store (from /ui/api/models), filtered and sorted;
 * pulls by spec through Ollama's /api/pull with a live bar (bytes, rate, ETA) and Cancel (the
 * request is aborted, which interrupts the pull on the server; a later pull resumes); remove after
 * a confirmation listing the files and bytes (/ui/api/removal, then /api/delete); load and unload
 * (Ollama's load-only /api/generate, `keep_alive: 0` to unload).
 */
import { useEffect, useMemo, useRef, useState } from "preact/hooks"
import { ApiError, errorMessage, request, requestJson } from "../api.js"
import { ErrorLine, Modal } from "../components.js"
import { formatBytes, formatDuration } from "../lib/format.js"
import { applyPullRecord, endPull, type PullState, startPull } from "../lib/pull.js"
import { ndjsonLines } from "../lib/streams.js"
import type { ModelsReply, RemovalPlan, UiModel } from "../types.js"

/** Capabilities per spec, from the listing or /api/show, kept for the page's life. */
const capabilityCache = new Map<string, ReadonlyArray<string> | null>()

/**
 * Each model's capabilities: the listing's when the server gives them, else asked of /api/show a
 * few at a time while the view is shown. `null`: the server could not say.
 */
export const useCapabilities = (models: ReadonlyArray<UiModel> | undefined, active: boolean) => {
  const [, setVersion] = useState(0)
  useEffect(() => {
    if (models === undefined || !active) return
    let cancelled = false
    const missing = models.filter((m) => m.capabilities === undefined && !capabilityCache.has(m.spec) && m.backend !== "cloud")
    const next = async (): Promise<void> => {
      const model = missing.shift()
      if (model === undefined || cancelled) return
      capabilityCache.set(model.spec, null)
      try {
        const show = await requestJson<{ capabilities?: Array<string> }>("/api/show", { method: "POST", json: { model: model.spec } })
        capabilityCache.set(model.spec, Array.isArray(show.capabilities) ? show.capabilities : null)
        if (!cancelled) setVersion((v) => v + 1)
      } catch {
        // unknown: shown as such
      }
      return next()
    }
    void Promise.all([next(), next(), next()])
    return () => {
      cancelled = true
    }
  }, [models, active])
  return (model: UiModel): ReadonlyArray<string> | undefined => model.capabilities ?? capabilityCache.get(model.spec) ?? undefined
}

type SortKey = "name" | "size" | "store" | "loaded" | "modified"

const storeOf = (m: UiModel) => (m.backend === "gguf" ? m.store ?? "gguf" : m.backend === "ollama" ? `ollama (${m.instance})` : m.instance)

/** Whether llmspell may delete the model's files: not another tool's store (its own command does), not a cloud model. */
const removable = (m: UiModel) => m.backend === "ollama" || (m.backend === "gguf" && (m.store === undefined || m.store === "llmspell"))

interface Pull {
  readonly id: number
  readonly state: PullState
  readonly controller: AbortController
}

function PullRow({ pull, onCancel, onDismiss }: { readonly pull: Pull; readonly onCancel: () => void; readonly onDismiss: () => void }) {
  const s = pull.state
  const running = s.phase === "starting" || s.phase === "downloading" || s.phase === "verifying"
  const bytes = s.totalBytes !== undefined ? `${formatBytes(s.completedBytes)} of ${formatBytes(s.totalBytes)}` : s.completedBytes > 0 ? formatBytes(s.completedBytes) : ""
  const details = [
    bytes,
    s.bytesPerSecond !== undefined && s.phase === "downloading" ? `${formatBytes(s.bytesPerSecond)}/s` : "",
    s.etaSeconds !== undefined && s.phase === "downloading" ? `${formatDuration(s.etaSeconds * 1000)} left` : ""
  ].filter((x) => x !== "")
  const label = s.phase === "done" ? "Pulled" : s.phase === "failed" ? "Failed" : s.phase === "cancelled" ? "Cancelled" : s.phase === "verifying" ? "Verifying" : "Pulling"
  return (
    <li class={`pull pull-${s.phase}`} data-spec={s.spec} aria-live="polite">
      <div class="pull-head">
        <span><strong>{label}</strong> <code>{s.spec}</code></span>
        {running
          ? <button type="button" onClick={onCancel}>Cancel</button>
          : <button type="button" class="link" onClick={onDismiss} aria-label={`Dismiss ${s.spec}`}>Dismiss</button>}
      </div>
      <progress
        max={s.totalBytes ?? 1}
        value={s.phase === "done" ? s.totalBytes ?? 1 : s.totalBytes !== undefined ? s.completedBytes : undefined}
        aria-label={`Progress of ${s.spec}`}
      />
      <div class="pull-details">
        <span class="muted">{s.phase === "failed" ? "" : s.status}</span>
        <span class="pull-bytes">{details.join(" · ")}</span>
      </div>
      {s.phase === "cancelled" ? <p class="muted">Stopped. Pulling it again resumes where it stopped.</p> : null}
      <ErrorLine message={s.error} />
    </li>
  )
}

function RemoveDialog({ model, onClose, onRemoved }: { readonly model: UiModel; readonly onClose: () => void; readonly onRemoved: () => void }) {
  const [plan, setPlan] = useState<RemovalPlan | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  useEffect(() => {
    requestJson<RemovalPlan>(`/ui/api/removal?model=${encodeURIComponent(model.spec)}`).then(setPlan, (e: Error) => setError(e.message))
  }, [model.spec])
  const remove = async () => {
    setBusy(true)
    setError(undefined)
    try {
      const response = await request("/api/delete", { method: "DELETE", json: { model: model.spec } })
      if (!response.ok) throw new ApiError(response.status, await errorMessage(response))
      onRemoved()
    } catch (e) {
      setError((e as Error).message)
      setBusy(false)
    }
  }
  const total = plan?.files.reduce((sum, f) => sum + (f.sharedWith === undefined ? f.sizeBytes ?? 0 : 0), 0)
  return (
    <Modal title={`Remove ${model.spec}?`} onClose={onClose}>
      {plan === undefined && error === undefined ? <p class="muted">Finding its files…</p> : null}
      {plan !== undefined
        ? plan.files.length > 0
          ? (
            <>
              <p>These files will be deleted from <strong>{plan.instance}</strong>:</p>
              <ul class="files">
                {plan.files.map((f) => (
                  <li key={f.path}>
                    <code>{f.path}</code> <span class="muted">{f.sizeBytes !== undefined ? formatBytes(f.sizeBytes) : "size unknown"}</span>
                    {f.sharedWith !== undefined ? <span class="muted"> (kept: {f.sharedWith} uses it too)</span> : null}
                  </li>
                ))}
              </ul>
              <p class="remove-total">Frees <strong>{formatBytes(total ?? plan.sizeBytes ?? 0)}</strong>.</p>
            </>
          )
          : <p>{plan.instance} removes <code>{plan.model}</code>{plan.sizeBytes !== undefined ? ` (${formatBytes(plan.sizeBytes)})` : ""}; it does not list the files beforehand.</p>
        : null}
      <ErrorLine message={error} />
      <div class="actions">
        <button type="button" onClick={onClose} autoFocus>Keep it</button>
        <button type="button" class="danger" disabled={plan === undefined || busy} onClick={remove}>{busy ? "Removing…" : "Remove"}</button>
      </div>
    </Modal>
  )
}

/** The Models view. */
export function ModelsView(props: {
  readonly models: ModelsReply | undefined
  readonly error: string | undefined
  readonly refresh: () => Promise<void>
  readonly readOnly: boolean
  readonly onChat: (spec: string) => void
  readonly active: boolean
}) {
  const [filter, setFilter] = useState("")
  const [sort, setSort] = useState<SortKey>("loaded")
  const [spec, setSpec] = useState("")
  const [pulls, setPulls] = useState<ReadonlyArray<Pull>>([])
  const [removing, setRemoving] = useState<UiModel | undefined>(undefined)
  const [busy, setBusy] = useState<Record<string, string>>({})
  const [actionError, setActionError] = useState<string | undefined>(undefined)
  const nextId = useRef(0)
  const capabilities = useCapabilities(props.models?.models, props.active)

  const update = (id: number, f: (s: PullState) => PullState) => setPulls((all) => all.map((p) => (p.id === id ? { ...p, state: f(p.state) } : p)))

  const pull = async (target: string) => {
    const id = ++nextId.current
    const controller = new AbortController()
    setPulls((all) => [...all, { id, state: startPull(target), controller }])
    try {
      const response = await request("/api/pull", { method: "POST", json: { model: target, stream: true }, signal: controller.signal })
      if (!response.ok || response.body === null) {
        const message = response.ok ? "the server sent no progress" : await errorMessage(response)
        update(id, (s) => endPull(s, { error: message }))
      } else {
        for await (const item of ndjsonLines(response.body)) {
          const now = performance.now()
          if (item.ok) update(id, (s) => applyPullRecord(s, item.value, now))
        }
        update(id, (s) => endPull(s, { error: "the server ended the pull before it finished" }))
      }
    } catch (e) {
      update(id, (s) => endPull(s, controller.signal.aborted ? "cancelled" : { error: (e as Error).message }))
    }
    await props.refresh()
  }

  const submitPull = (e: Event) => {
    e.preventDefault()
    const target = spec.trim()
    if (target === "") return
    setSpec("")
    void pull(target)
  }

  const act = async (model: UiModel, what: "load" | "unload") => {
    setBusy((b) => ({ ...b, [model.spec]: what === "load" ? "Loading…" : "Unloading…" }))
    setActionError(undefined)
    try {
      const response = await request("/api/generate", { method: "POST", json: { model: model.spec, ...(what === "unload" ? { keep_alive: 0 } : {}), stream: false } })
      if (!response.ok) throw new Error(`${what === "load" ? "Load" : "Unload"} of ${model.spec} failed: ${await errorMessage(response)}`)
    } catch (e) {
      setActionError((e as Error).message)
    }
    setBusy(({ [model.spec]: _, ...rest }) => rest)
    await props.refresh()
  }

  const shown = useMemo(() => {
    const words = filter.toLowerCase().split(/\s+/).filter((w) => w !== "")
    const list = (props.models?.models ?? []).filter((m) => {
      const text = [m.spec, m.family, m.quantization, m.parameterSize, storeOf(m), m.backend, ...(capabilities(m) ?? []), m.loaded ? "loaded" : ""]
        .join(" ")
        .toLowerCase()
      return words.every((w) => text.includes(w))
    })
    const byName = (a: UiModel, b: UiModel) => a.spec.localeCompare(b.spec)
    const order: Record<SortKey, (a: UiModel, b: UiModel) => number> = {
      name: byName,
      size: (a, b) => b.sizeBytes - a.sizeBytes || byName(a, b),
      store: (a, b) => storeOf(a).localeCompare(storeOf(b)) || byName(a, b),
      loaded: (a, b) => Number(b.loaded) - Number(a.loaded) || byName(a, b),
      modified: (a, b) => (b.modifiedAt ?? "").localeCompare(a.modifiedAt ?? "") || byName(a, b)
    }
    return [...list].sort(order[sort])
  }, [props.models, filter, sort, capabilities])

  return (
    <div class="view models">
      <h1>Models</h1>
      {!props.readOnly
        ? (
          <form class="pull-form" onSubmit={submitPull}>
            <label class="grow">
              Pull a model
              <input
                type="text"
                name="spec"
                placeholder="org/repo:Q4_K_M, qwen2.5:0.5b@ollama"
                value={spec}
                onInput={(e) => setSpec(e.currentTarget.value)}
                autoComplete="off"
                spellcheck={false}
              />
            </label>
            <button type="submit" class="primary">Pull</button>
          </form>
        )
        : <p class="muted">This server is read-only: pulls and removals are off.</p>}
      {pulls.length > 0
        ? (
          <ul class="pulls">
            {pulls.map((p) => (
              <PullRow
                key={p.id}
                pull={p}
                onCancel={() => p.controller.abort()}
                onDismiss={() => setPulls((all) => all.filter((x) => x.id !== p.id))}
              />
            ))}
          </ul>
        )
        : null}
      <div class="toolbar">
        <label class="grow">
          Filter
          <input type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} placeholder="name, store, quantization, capability…" />
        </label>
        <label>
          Sort by
          <select value={sort} onChange={(e) => setSort(e.currentTarget.value as SortKey)}>
            <option value="loaded">Loaded first</option>
            <option value="name">Name</option>
            <option value="size">Size</option>
            <option value="store">Store</option>
            <option value="modified">Recently changed</option>
          </select>
        </label>
        <button type="button" onClick={() => void props.refresh()}>Refresh</button>
      </div>
      <ErrorLine message={props.error} />
      <ErrorLine message={actionError} />
      {props.models?.unavailable.map((u) => (
        <p key={u.instance} class="warning">
          {u.instance} ({u.backend}) did not answer: {u.error.message}
        </p>
      ))}
      {props.models === undefined && props.error === undefined ? <p class="muted">Loading models…</p> : null}
      {props.models !== undefined
        ? (
          <table class="model-table">
            <caption class="muted">{shown.length} of {props.models.models.length} models</caption>
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Store</th>
                <th scope="col">Size</th>
                <th scope="col">Quantization</th>
                <th scope="col">Capabilities</th>
                <th scope="col">State</th>
                <th scope="col"><span class="sr-only">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {shown.map((m) => {
                const caps = capabilities(m)
                return (
                  <tr key={m.spec} data-spec={m.spec}>
                    <th scope="row" data-label="Model"><code>{m.spec}</code>{m.parameterSize ? <span class="muted"> {m.parameterSize}</span> : null}</th>
                    <td data-label="Store">
                      {storeOf(m)}
                      {(m.locations?.length ?? 0) > 1 ? <span class="muted"> +{m.locations!.length - 1} more</span> : null}
                    </td>
                    <td data-label="Size">{m.sizeBytes > 0 ? formatBytes(m.sizeBytes) : "—"}</td>
                    <td data-label="Quantization">{m.quantization ?? "—"}</td>
                    <td data-label="Capabilities" class="caps">
                      {caps === undefined ? <span class="muted">—</span> : caps.map((c) => <span key={c} class={`chip cap-${c}`}>{c}</span>)}
                    </td>
                    <td data-label="State">{m.loaded ? <span class="chip loaded">loaded</span> : <span class="muted">on disk</span>}</td>
                    <td class="row-actions">
                      <button type="button" onClick={() => props.onChat(m.spec)} aria-label={`Chat with ${m.spec}`}>Chat</button>
                      {m.backend !== "cloud"
                        ? (
                          <button type="button" disabled={busy[m.spec] !== undefined} onClick={() => void act(m, m.loaded ? "unload" : "load")} aria-label={`${m.loaded ? "Unload" : "Load"} ${m.spec}`}>
                            {busy[m.spec] ?? (m.loaded ? "Unload" : "Load")}
                          </button>
                        )
                        : null}
                      {!props.readOnly && removable(m)
                        ? <button type="button" class="danger" onClick={() => setRemoving(m)} aria-label={`Remove ${m.spec}`}>Remove</button>
                        : null}
                      {m.backend === "gguf" && !removable(m) && m.locations?.[0]?.removeCommand !== undefined
                        ? <span class="muted small remove-hint" title="llmspell never deletes another tool's files">remove with <code>{m.locations[0].removeCommand}</code></span>
                        : null}
                    </td>
                  </tr>
                )
              })}
            </tbody>
          </table>
        )
        : null}
      {removing !== undefined
        ? (
          <RemoveDialog
            model={removing}
            onClose={() => setRemoving(undefined)}
            onRemoved={() => {
              setRemoving(undefined)
              void props.refresh()
            }}
          />
        )
        : null}
    </div>
  )
}
