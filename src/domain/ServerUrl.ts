/**
 * Server URLs as people write them, and as llmspell shows them. One parse for every URL-ish input
 * (`--host`, LLMSPELL_HOST, OLLAMA_HOST, `--ollama-host`, `base_url`, `hub.endpoint`, HF_ENDPOINT):
 * a full `http(s)://` URL, or Ollama's short forms (`host`, `host:port`, `:port`, `[::1]:port`,
 * `user:pw@host:port`, each with an optional path). One redaction for every place a URL is shown
 * (messages, `config show`, `--json`, logs, the access log): the user name and password, and every
 * query or fragment parameter whose name looks like a credential (`api_key`, `token`, `sig`, …).
 * Pure: no I/O.
 */

/**
 * Ports Node's fetch (undici) refuses to connect to, with "bad port" and no more: the fetch
 * standard's bad-port list (https://fetch.spec.whatwg.org/#port-blocking). Checked with the rest of
 * a URL so such a value is a clear error naming its source, not a runtime failure with no hint.
 */
export const FETCH_BAD_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110,
  111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532,
  540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061,
  6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080
])

/** Ollama's port, the default of a short form in OLLAMA_HOST and an Ollama instance's `base_url`. */
export const OLLAMA_DEFAULT_PORT = 11434
/** `llmspell serve`'s port, the default of a short form in `--host` and LLMSPELL_HOST. */
export const LLMSPELL_DEFAULT_PORT = 11435

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//
const USERINFO = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)@/

/** True when the text is written with a scheme (`http://…`); otherwise it is a short form. */
export const hasScheme = (text: string): boolean => SCHEME.test(text.trim())

/**
 * A server address in any form people write, as a URL, the way Ollama reads OLLAMA_HOST: no scheme
 * means `http://`; a short form without a port gets `defaultPort` (none: the scheme's own); an
 * IPv6 address gets its brackets; the listen-everywhere addresses `0.0.0.0` and `::` become
 * loopback (a client reaches such a server there). A URL written with a scheme is kept as written
 * (but for that host), so `config show` shows what was typed. Never throws; what is still wrong
 * (scheme, port) is for `urlProblem` to say.
 */
export const parseServerUrl = (raw: string, defaultPort?: number): string => {
  const s = raw.trim()
  if (SCHEME.test(s)) {
    return s.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[^/?#]*@)?)(0\.0\.0\.0|\[::\])(?=[:/?#]|$)/, (_m, head: string, host: string) =>
      `${head}${host === "[::]" ? "[::1]" : "127.0.0.1"}`
    )
  }
  const end = s.search(/[/?#]/)
  let hostport = end >= 0 ? s.slice(0, end) : s
  const rest = end >= 0 ? s.slice(end) : ""
  // `user:pw@host:port`: kept in the URL; the config turns it into an Authorization header.
  const at = hostport.lastIndexOf("@")
  const userinfo = at >= 0 ? `${hostport.slice(0, at)}@` : ""
  if (at >= 0) hostport = hostport.slice(at + 1)
  let host = "127.0.0.1"
  let port = defaultPort !== undefined ? String(defaultPort) : ""
  const m = /^(\[[^\]]*\]|[^:]*):([^:]*)$/.exec(hostport)
  if (m !== null) {
    if (m[1]!.length > 0) host = m[1]!
    // A bad port is kept: `urlProblem` reports it with its source instead of guessing.
    if (m[2]!.length > 0) port = m[2]!
  } else if (hostport.length > 0) {
    // A bare IPv6 address (`::1`) has colons but no port.
    host = hostport.includes(":") && !hostport.startsWith("[") ? `[${hostport}]` : hostport
  }
  // A listen-everywhere address: a client reaches that server on loopback.
  if (host === "0.0.0.0") host = "127.0.0.1"
  if (host === "[::]") host = "[::1]"
  return `http://${userinfo}${host}${port.length > 0 ? `:${port}` : ""}${rest === "/" ? "" : rest}`
}

/** OLLAMA_HOST as Ollama reads it: `host`, `host:port`, `:port` or a URL; default port 11434. */
export const parseOllamaHost = (raw: string): string => parseServerUrl(raw, OLLAMA_DEFAULT_PORT)

/** What is wrong with a server URL (already through `parseServerUrl`), or undefined: scheme, syntax, and a port fetch can reach. */
export const urlProblem = (s: string): string | undefined => {
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[^/?#]*@)?(\[[^\]]*\]|[^/?#:]*)(?::([^/?#]*))?/.exec(s)
  const port = authority?.[2]
  if (port !== undefined && port.length > 0) {
    const n = /^\d+$/.test(port) ? Number(port) : NaN
    if (!(n >= 1 && n <= 65535)) return `must have a port from 1 to 65535 (the port is ${JSON.stringify(port)})`
    if (FETCH_BAD_PORTS.has(n)) {
      return `port ${n} is one that fetch refuses to connect to ("bad port" in the fetch standard): use another port`
    }
  }
  try {
    const u = new URL(s)
    if (u.protocol !== "http:" && u.protocol !== "https:") return "must be an http:// or https:// URL, or host:port"
    return u.hostname.length > 0 ? undefined : "must name a host (http://host:port, or host:port)"
  } catch {
    return "must be an http:// or https:// URL, or host:port"
  }
}

/**
 * A URL split from its query and fragment: llmspell appends API paths (`/api/chat`,
 * `/chat/completions`, `/rpc`) to a server URL, so a query written there never reaches the
 * server (Ollama's client drops it; appended paths land inside it). `dropped` is what was cut, as
 * written: show it only through `redactUrl`.
 */
export const splitQuery = (url: string): { readonly url: string; readonly dropped?: string } => {
  const i = url.search(/[?#]/)
  return i < 0 ? { url } : { url: url.slice(0, i), dropped: url.slice(i) }
}

/**
 * Names of keys and parameters whose values are never shown: keys, tokens, secrets, passwords,
 * signatures (`sig`, `X-Amz-Signature`), credentials, sessions. Broad on purpose: hiding a harmless
 * value costs a little clarity; showing a key costs the key.
 */
export const SECRET_NAME = /key|token|secret|passw|pwd|auth|sig|credential|session|cookie|jwt|bearer/i

const decodeName = (name: string): string => {
  try {
    return decodeURIComponent(name.replace(/\+/g, " "))
  } catch {
    return name
  }
}

/** Query and fragment parameters (`?a=1&api_key=…#access_token=…`) with secret-looking values redacted. */
const redactParameters = (part: string): string =>
  part.replace(/([^&;=?#]+)=([^&;#]*)/g, (whole, name: string, value: string) =>
    value.length > 0 && SECRET_NAME.test(decodeName(name)) ? `${name}=<redacted>` : whole
  )

/**
 * A URL as it may be shown: its user name and password replaced by `<redacted>` (also in a short
 * form, `user:pw@host:port`), and the values of query and fragment parameters that look like
 * credentials too. Other strings come back unchanged. The one redaction for URLs: every place
 * that prints one (messages, `config show`, `--json`, logs, the access log) goes through it.
 */
export const redactUrl = (value: string): string => {
  const withScheme = SCHEME.test(value.trimStart())
  let out = value.replace(USERINFO, "$1<redacted>@")
  // A short form (`bob:pw@host:11434`, `token@host`): what comes before the `@` of the authority.
  if (!withScheme) out = out.replace(/^(\s*)[^/?#\s"]+@(?=[^/?#\s"@]*(?:[/?#]|$))/, "$1<redacted>@")
  const q = out.search(/[?#]/)
  return q < 0 ? out : out.slice(0, q) + redactParameters(out.slice(q))
}

/** Every URL in a text (an error message, a log line, a library's exception) through `redactUrl`. */
export const redactUrlsIn = (text: string): string =>
  // Punctuation that ends a sentence is not part of the URL before it.
  text.replace(/[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s"'<>`]*[^\s"'<>`.,;:!?)\]}]/g, (url) => redactUrl(url))

/** A URL without its user name and password (they travel in a header instead). */
export const stripUserinfo = (value: string): string => value.replace(USERINFO, "$1")

/** The user name and password of a URL, percent-decoded, when it has them. */
export const userinfoOf = (url: string): { readonly user: string; readonly password: string } | undefined => {
  if (!USERINFO.test(url)) return undefined
  try {
    const u = new URL(url)
    return { user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) }
  } catch {
    return undefined
  }
}
