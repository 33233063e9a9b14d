/**
 * The page's requests to its server: same origin, JSON, and the API key as a bearer header when
 * the server asks for one. The key lives in this module's memory and, if the user lets it, in the
 * tab's sessionStorage (gone when the tab closes) — never in a URL, a cookie or localStorage.
 * A 401 tells the app to ask for the key again.
 */

const KEY_SLOT = "llmspell.apiKey"

let apiKey: string | undefined = (() => {
  try {
    return sessionStorage.getItem(KEY_SLOT) ?? undefined
  } catch {
    return undefined
  }
})()

const unauthorizedListeners = new Set<() => void>()

/** Calls `listener` whenever the server refuses the key (or wants one); returns the unsubscribe. */
export const onUnauthorized = (listener: () => void): (() => void) => {
  unauthorizedListeners.add(listener)
  return () => unauthorizedListeners.delete(listener)
}

/** Uses `key` from now on; `remember` keeps it in this tab's sessionStorage across reloads. */
export const setApiKey = (key: string | undefined, remember: boolean) => {
  apiKey = key
  try {
    if (key !== undefined && remember) sessionStorage.setItem(KEY_SLOT, key)
    else sessionStorage.removeItem(KEY_SLOT)
  } catch {
    // storage disabled: the key stays in memory only
  }
}

/** True when a key is held. */
export const hasApiKey = () => apiKey !== undefined

/** A refused or failed request, with the server's message. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
  }
}

/** The error message of a non-OK response, in whichever API's shape it came. */
export const errorMessage = async (response: Response): Promise<string> => {
  const text = await response.text().catch(() => "")
  try {
    const body = JSON.parse(text) as { error?: string | { message?: string } }
    const message = typeof body.error === "string" ? body.error : body.error?.message
    if (message !== undefined) return message
  } catch {
    // not JSON: the text itself
  }
  return text.trim() !== "" ? text.trim().slice(0, 300) : `HTTP ${response.status}`
}

/** A request to the server; a 401 notifies the listeners (the app asks for the key) and throws. */
export const request = async (path: string, init: RequestInit & { readonly json?: unknown; readonly key?: string } = {}): Promise<Response> => {
  const headers = new Headers(init.headers)
  const key = init.key ?? apiKey
  if (key !== undefined) headers.set("authorization", `Bearer ${key}`)
  if (init.json !== undefined) headers.set("content-type", "application/json")
  const { json, key: _key, ...rest } = init
  const response = await fetch(path, {
    ...rest,
    headers,
    credentials: "omit",
    cache: "no-store",
    ...(json !== undefined ? { body: JSON.stringify(json) } : {})
  })
  if (response.status === 401) {
    if (init.key === undefined) for (const listener of unauthorizedListeners) listener()
    throw new ApiError(401, await errorMessage(response))
  }
  return response
}

/** A JSON request whose non-OK answer is an ApiError with the server's message. */
export const requestJson = async <A>(path: string, init: RequestInit & { readonly json?: unknown; readonly key?: string } = {}): Promise<A> => {
  const response = await request(path, init)
  if (!response.ok) throw new ApiError(response.status, await errorMessage(response))
  return (await response.json()) as A
}
