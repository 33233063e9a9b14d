/**
 * The web page of `llmspell serve`: Models, Chat and Server views over the server's own APIs
 * (OpenAI's chat completions, Ollama's pull/delete/show/load, and /ui/api/ for what neither has).
 *
 * Preact, because the page is small and must stay so (a size budget checked at build): its
 * runtime with hooks is ~5 KB gzipped, it renders text as text (JSX children are never parsed
 * as HTML), and it needs no compiler beyond esbuild's JSX transform. Lit would add web-component
 * ceremony for no gain here; Svelte needs its own compiler in the build.
 *
 * The three views stay mounted (hidden when not shown), so a pull or a streamed answer keeps
 * going while another view is open. Routing is the URL's hash: #/models, #/chat, #/server.
 */
import { render } from "preact"
import { useCallback, useEffect, useRef, useState } from "preact/hooks"
import { ApiError, hasApiKey, onUnauthorized, requestJson, setApiKey } from "./api.js"
import { ErrorLine, Modal } from "./components.js"
import type { ModelsReply, ServerInfo } from "./types.js"
import { ChatView } from "./views/Chat.js"
import { ModelsView } from "./views/Models.js"
import { ServerView } from "./views/Server.js"
import "./app.css"

type Route = "models" | "chat" | "server"

const routeOf = (hash: string): Route => {
  const name = hash.replace(/^#\/?/, "")
  return name === "chat" || name === "server" ? name : "models"
}

function KeyDialog({ onAccepted, refused }: { readonly onAccepted: () => void; readonly refused: boolean }) {
  const [key, setKey] = useState("")
  const [remember, setRemember] = useState(true)
  const [error, setError] = useState<string | undefined>(refused ? "The server refused the key this page held." : undefined)
  const [busy, setBusy] = useState(false)
  const submit = async (e: Event) => {
    e.preventDefault()
    if (key.trim() === "") return setError("Enter the key the server was started with (--api-key).")
    setBusy(true)
    try {
      await requestJson<ServerInfo>("/ui/api/server", { key: key.trim() })
      setApiKey(key.trim(), remember)
      onAccepted()
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? "The server refused this key." : `Could not reach the server: ${(err as Error).message}`)
    } finally {
      setBusy(false)
    }
  }
  return (
    <Modal title="API key" onClose={() => undefined} label="The server needs its API key">
      <form onSubmit={submit} class="stack">
        <p>This server was started with an API key. Enter it to use the page; it is sent as a bearer header, never put in a URL or a cookie.</p>
        <label>
          Key
          <input type="password" name="api-key" autoComplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} autoFocus />
        </label>
        <label class="inline">
          <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.currentTarget.checked)} />
          Keep it for this tab (sessionStorage) so a reload does not ask again
        </label>
        <ErrorLine message={error} />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>{busy ? "Checking…" : "Use key"}</button>
        </div>
      </form>
    </Modal>
  )
}

function App() {
  const [route, setRoute] = useState<Route>(routeOf(location.hash))
  const [auth, setAuth] = useState<"checking" | "need-key" | "refused" | "ok">("checking")
  const [server, setServer] = useState<ServerInfo | undefined>(undefined)
  const [models, setModels] = useState<ModelsReply | undefined>(undefined)
  const [modelsError, setModelsError] = useState<string | undefined>(undefined)
  const [chatModel, setChatModel] = useState<{ readonly spec: string; readonly n: number } | undefined>(undefined)
  const generation = useRef(0)

  useEffect(() => {
    const onHash = () => setRoute(routeOf(location.hash))
    addEventListener("hashchange", onHash)
    return () => removeEventListener("hashchange", onHash)
  }, [])
  useEffect(() => onUnauthorized(() => setAuth(hasApiKey() ? "refused" : "need-key")), [])

  const refreshModels = useCallback(async () => {
    const mine = ++generation.current
    try {
      const reply = await requestJson<ModelsReply>("/ui/api/models")
      if (mine === generation.current) {
        setModels(reply)
        setModelsError(undefined)
      }
    } catch (e) {
      if (mine === generation.current && !(e instanceof ApiError && e.status === 401)) setModelsError((e as Error).message)
    }
  }, [])

  const connect = useCallback(async () => {
    try {
      // both at once: the models list is what the first view waits for
      const [info] = await Promise.all([requestJson<ServerInfo>("/ui/api/server"), refreshModels()])
      setServer(info)
      setAuth("ok")
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) {
        setAuth("ok")
        setModelsError(`Could not reach the server: ${(e as Error).message}`)
      }
    }
  }, [refreshModels])

  useEffect(() => void connect(), [connect])
  // the page is usable once the models are on screen (bench/ui.ts reads this mark)
  useEffect(() => {
    if (models !== undefined && performance.getEntriesByName("llmspell:ready").length === 0) performance.mark("llmspell:ready")
  }, [models])

  const openChat = (spec: string) => {
    setChatModel((previous) => ({ spec, n: (previous?.n ?? 0) + 1 }))
    location.hash = "#/chat"
  }

  const tabs: ReadonlyArray<[Route, string]> = [["models", "Models"], ["chat", "Chat"], ["server", "Server"]]
  const ready = auth === "ok"
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <span class="brand">llmspell</span>
        <nav aria-label="Views">
          {tabs.map(([id, label]) => (
            <a key={id} href={`#/${id}`} aria-current={route === id ? "page" : undefined}>{label}</a>
          ))}
        </nav>
        <span class="meta">
          {server !== undefined ? `v${server.version}${server.readOnly ? " · read-only" : ""}` : ""}
          {hasApiKey() && ready
            ? (
              <button
                type="button"
                class="link"
                onClick={() => {
                  setApiKey(undefined, false)
                  setAuth("need-key")
                }}
              >
                Forget key
              </button>
            )
            : null}
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        {auth === "checking" ? <p class="muted">Connecting…</p> : null}
        {ready
          ? (
            <>
              <section hidden={route !== "models"} aria-label="Models">
                <ModelsView models={models} error={modelsError} refresh={refreshModels} readOnly={server?.readOnly ?? false} onChat={openChat} active={route === "models"} />
              </section>
              <section hidden={route !== "chat"} aria-label="Chat">
                <ChatView models={models} refreshModels={refreshModels} requestedModel={chatModel} active={route === "chat"} />
              </section>
              <section hidden={route !== "server"} aria-label="Server">
                <ServerView active={route === "server"} onChange={refreshModels} />
              </section>
            </>
          )
          : null}
      </main>
      {auth === "need-key" || auth === "refused"
        ? (
          <KeyDialog
            refused={auth === "refused"}
            onAccepted={() => {
              setAuth("checking")
              void connect()
            }}
          />
        )
        : null}
    </>
  )
}

render(<App />, document.getElementById("app")!)
