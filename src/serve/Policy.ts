/**
 * What `llmspell serve` allows, written once and used by every way in: the Ollama, OpenAI and
 * Anthropic routes (src/serve/Routes.ts, the guard in Server.ts) and llmspell's own protocol at `/rpc`
 * (src/serve/rpc.ts). Each refusal is a value here; each API turns it into its own terms (an
 * HTTP status and error body, or a typed `ServerRefused`).
 *
 * - The API key: the bearer token, or the `x-api-key` header Anthropic's clients send it in,
 *   compared in constant time (sha256 digests of equal length, `timingSafeEqual`), never logged; a
 *   blank key is refused at start, since no client could send it.
 * - The Host check on a loopback bind (DNS rebinding, Ollama's CVE-2024-28224): exactly one Host
 *   header, parsed strictly as `host[:port]` (a bracketed IPv6 literal, a dotted IPv4 address or a
 *   DNS name, nothing after the port), naming this machine's loopback; an absolute request target
 *   (`GET http://evil/`) is held to the same rule.
 * - Paths: a spec that is a file path only with `--allow-paths`; `--read-only` refuses what writes.
 * - keep_alive: how long an idle model stays loaded, bounded so every view can show it.
 * May touch: nothing (pure, but for `node:crypto`).
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createHash, timingSafeEqual } from "node:crypto"
import { UsageError } from "../domain/Errors.js"
import * as ModelSpec from "../domain/ModelSpec.js"

/** The server's policy, fixed at start. */
export interface Policy {
  /** Every request must carry `Authorization: Bearer <key>`. */
  readonly apiKey: Option.Option<Redacted.Redacted<string>>
  /** Bound to loopback: requests must name a loopback Host. */
  readonly loopbackOnly: boolean
  /** Browser origins allowed (`*`: any); none by default. */
  readonly corsOrigins: ReadonlyArray<string>
  /** `--read-only`: pull, delete, import and installing Ollama are refused. */
  readonly readOnly: boolean
  /** `--allow-paths`: specs that are file paths are served. */
  readonly allowPaths: boolean
}

/** A spec that is a file path, without `--allow-paths`. */
export interface PathRefused {
  readonly _tag: "PathRefused"
  readonly operation: string
  readonly spec: string
}

/** An operation that writes, on a `--read-only` server. */
export interface ReadOnly {
  readonly _tag: "ReadOnly"
  readonly operation: string
}

/** Why a request is refused before any route. */
export type RequestRefusal =
  | { readonly _tag: "Unauthorized" }
  | { readonly _tag: "HostRefused"; readonly host: string; readonly reason: string }
  | { readonly _tag: "OriginRefused"; readonly origin: string }

/** Why a request is refused, before each API words it. */
export type Refusal = RequestRefusal | PathRefused | ReadOnly

// ---------------------------------------------------------------------------------------------
// Names and the Host header

/** An IPv4 address in dotted-quad decimal (`127.0.0.1`; no `127.1`, no leading zeros, each ≤ 255). */
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/
/** A DNS name: dot-separated labels of letters, digits and inner hyphens, no trailing dot. */
const DNS_NAME = /^(?=.{1,253}$)[a-z\d]([a-z\d-]{0,61}[a-z\d])?(\.[a-z\d]([a-z\d-]{0,61}[a-z\d])?)*$/i

/** The IPv6 address in canonical form (`::1`), through the URL parser, or none when it is not one. */
const canonicalIpv6 = (literal: string): Option.Option<string> => {
  if (!/^[\da-f:.]+$/i.test(literal) || !literal.includes(":")) return Option.none()
  try {
    return Option.some(new URL(`http://[${literal}]/`).hostname.slice(1, -1))
  } catch {
    return Option.none()
  }
}

/** True for an address or name that is this machine's loopback (`localhost`, `*.localhost`, 127/8, `::1`). */
export const isLoopbackName = (name: string): boolean => {
  const bare = name.startsWith("[") && name.endsWith("]") ? name.slice(1, -1) : name
  if (IPV4.test(bare)) return bare.startsWith("127.")
  const v6 = canonicalIpv6(bare)
  if (Option.isSome(v6)) return v6.value === "::1" || /^::ffff:(127\.|7f[\da-f]{2}:)/i.test(v6.value)
  const lower = bare.toLowerCase()
  return DNS_NAME.test(lower) && (lower === "localhost" || lower.endsWith(".localhost"))
}

/** A Host header's parts. */
export interface HostAndPort {
  /** As written, brackets kept for IPv6 (`[::1]`). */
  readonly host: string
  readonly port: Option.Option<number>
}

/**
 * A Host header (or the authority of an absolute request target) parsed strictly: `host[:port]`,
 * where host is `[IPv6]`, a dotted IPv4 address or a DNS name, and port 0–65535. Anything else —
 * `[::1]evil.com`, `a b`, `user@host`, `host:80:80`, a trailing dot — is none.
 */
export const parseHost = (value: string): Option.Option<HostAndPort> => {
  const match = /^(\[[^\]]*\]|[^:[\]]*)(?::(\d{1,5}))?$/.exec(value)
  if (match === null) return Option.none()
  const [, host = "", portText] = match
  const port = portText === undefined ? Option.none<number>() : Option.some(Number(portText))
  if (Option.isSome(port) && port.value > 65535) return Option.none()
  if (host.startsWith("[")) return Option.map(canonicalIpv6(host.slice(1, -1)), () => ({ host, port }))
  return IPV4.test(host) || DNS_NAME.test(host) ? Option.some({ host, port }) : Option.none()
}

/** The request facts the policy looks at. */
export interface RequestFacts {
  /** Every Host header the request carried, in order (a request may carry several). */
  readonly hosts: ReadonlyArray<string>
  /** The request target as sent (`/api/tags`, or `http://host/api/tags` in absolute form). */
  readonly target: string
  readonly origin: string | undefined
  readonly authorization: string | undefined
  /** The `x-api-key` header (how Anthropic's clients send the key), if any. */
  readonly apiKeyHeader?: string | ReadonlyArray<string> | undefined
}

/** On a loopback bind: the refusal of a request that does not name this machine, if it does not. */
const checkHost = (facts: RequestFacts): Option.Option<RequestRefusal> => {
  const refuse = (host: string, reason: string) => Option.some<RequestRefusal>({ _tag: "HostRefused", host, reason })
  if (facts.hosts.length !== 1) {
    return refuse(facts.hosts.join(", "), facts.hosts.length === 0 ? "the request has no Host header" : "the request has several Host headers")
  }
  const header = facts.hosts[0]!
  const parsed = parseHost(header)
  if (Option.isNone(parsed)) return refuse(header, "it is not a valid host[:port]")
  if (!isLoopbackName(parsed.value.host)) return refuse(header, "it is not a loopback name (this server only answers localhost)")
  const absolute = /^[a-z][a-z\d+.-]*:\/\/([^/?#]*)/i.exec(facts.target)
  if (absolute !== null) {
    const authority = Option.flatMap(Option.some(absolute[1]!), parseHost)
    if (Option.isNone(authority) || !isLoopbackName(authority.value.host)) {
      return refuse(absolute[1]!, "the request target names another host")
    }
  }
  return Option.none()
}

// ---------------------------------------------------------------------------------------------
// The API key

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest()

/** Constant-time check of an `Authorization` header against the key (equal-length digests: no length leak). */
export const bearerMatches = (header: string | undefined, key: Redacted.Redacted<string>): boolean => {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header?.trim() ?? "")
  const given = match?.[1] ?? ""
  return timingSafeEqual(digest(given), digest(Redacted.value(key))) && given.length > 0
}

/** Constant-time check of an `x-api-key` header against the key; a repeated header is no key. */
export const apiKeyHeaderMatches = (header: string | ReadonlyArray<string> | undefined, key: Redacted.Redacted<string>): boolean => {
  const given = typeof header === "string" ? header.trim() : ""
  return timingSafeEqual(digest(given), digest(Redacted.value(key))) && given.length > 0
}

/**
 * The key a server runs with: the one given, else `LLMSPELL_API_KEY`. A key no client could send
 * as a bearer token (blank, with spaces or control characters) is a usage error at start: the
 * server would otherwise refuse every request.
 */
export const apiKeyFrom = (
  given: Option.Option<Redacted.Redacted<string>>,
  fromEnvironment: Option.Option<Redacted.Redacted<string>>
): Effect.Effect<Option.Option<Redacted.Redacted<string>>, UsageError> => {
  const [source, key] = Option.isSome(given)
    ? ["--api-key", given] as const
    : ["LLMSPELL_API_KEY", fromEnvironment] as const
  if (Option.isNone(key)) return Effect.succeed(Option.none())
  const text = Redacted.value(key.value)
  if (text.trim() === "") {
    return Effect.fail(
      new UsageError({
        reason: `${source} is empty: no client could send it, so every request would be refused`,
        suggestion: source === "--api-key"
          ? "pass a key (e.g. --api-key \"$(openssl rand -hex 24)\"), or leave --api-key out to serve loopback without one"
          : "set LLMSPELL_API_KEY to a key, or unset it to serve loopback without one"
      })
    )
  }
  if (/[\s\x00-\x1f\x7f]/.test(text)) {
    return Effect.fail(
      new UsageError({
        reason: `${source} contains spaces or control characters: a client cannot send it as a bearer token`,
        suggestion: "use a key of letters, digits and punctuation, e.g. the output of `openssl rand -hex 24`"
      })
    )
  }
  return Effect.succeed(key)
}

/** Refuses a bind that would expose the server without a key. */
export const checkBind = (host: string, apiKey: Option.Option<Redacted.Redacted<string>>): Effect.Effect<void, UsageError> =>
  isLoopbackName(host) || Option.isSome(apiKey)
    ? Effect.void
    : Effect.fail(
      new UsageError({
        reason: `refusing to listen on ${host} without an API key: anyone who can reach it could run and delete models`,
        suggestion: `add --api-key <key> (clients then send "Authorization: Bearer <key>"), or listen on loopback: llmspell serve --listen 127.0.0.1`
      })
    )

// ---------------------------------------------------------------------------------------------
// Requests, specs and writes

/** True when browser requests from this origin are allowed. */
export const originAllowed = (policy: Policy, origin: string): boolean =>
  policy.corsOrigins.includes("*") || policy.corsOrigins.includes(origin)

/**
 * True when `origin` is the server's own origin as the request reached it (the web page's own
 * requests): `http://` or `https://` and the request's single Host header.
 */
export const isSameOrigin = (origin: string, hosts: ReadonlyArray<string>): boolean =>
  hosts.length === 1 && [`http://${hosts[0]!.toLowerCase()}`, `https://${hosts[0]!.toLowerCase()}`].includes(origin.toLowerCase())

/**
 * The checks before any route, in order: Host (on loopback), then Origin (CORS; the server's own
 * origin, the web page, is always allowed), then the key (a bearer token or an `x-api-key`
 * header). `preflight` requests (OPTIONS from an allowed origin) skip the key: browsers send no
 * credentials there; nor do `public` ones, the web page's static files, which hold no data (the
 * page then asks for the key).
 */
export const checkRequest = (
  policy: Policy,
  facts: RequestFacts,
  options: { readonly preflight: boolean; readonly public?: boolean }
): Option.Option<RequestRefusal> => {
  if (policy.loopbackOnly) {
    const host = checkHost(facts)
    if (Option.isSome(host)) return host
  }
  if (facts.origin !== undefined && !originAllowed(policy, facts.origin) && !isSameOrigin(facts.origin, facts.hosts)) {
    return Option.some({ _tag: "OriginRefused", origin: facts.origin })
  }
  if (options.preflight || options.public === true) return Option.none()
  if (
    Option.isSome(policy.apiKey) && !bearerMatches(facts.authorization, policy.apiKey.value) &&
    !apiKeyHeaderMatches(facts.apiKeyHeader, policy.apiKey.value)
  ) return Option.some({ _tag: "Unauthorized" })
  return Option.none()
}

/** True when a spec names a file (`./x.gguf`, `/abs/x.gguf`, `~/x`, `file://…`). */
export const isPathSpec = (spec: string): boolean => {
  const parsed = ModelSpec.parse(spec)
  return Either.isRight(parsed) && ModelSpec.isFileReference(parsed.right.model)
}

/** The refusal of a spec that is a file path, unless `--allow-paths`. */
export const checkSpec = (policy: Pick<Policy, "allowPaths">, operation: string, spec: string): Option.Option<PathRefused> =>
  !policy.allowPaths && isPathSpec(spec) ? Option.some({ _tag: "PathRefused", operation, spec }) : Option.none()

/** The refusal of an operation that changes the store, when `--read-only`. */
export const checkWrite = (policy: Pick<Policy, "readOnly">, operation: string): Option.Option<ReadOnly> =>
  policy.readOnly ? Option.some({ _tag: "ReadOnly", operation }) : Option.none()

// ---------------------------------------------------------------------------------------------
// keep_alive

/**
 * The longest keep-alive, in seconds: Go's largest `time.Duration` (about 292 years), the bound of
 * Ollama's own parser. Beyond it no clock or date can show when the model unloads; a caller who
 * means "keep it loaded" says so with a negative value.
 */
export const MAX_KEEP_ALIVE_SECONDS = 9_223_372_036

/**
 * A keep-alive in seconds as the server takes it: negative (any, even -Infinity) keeps the model
 * loaded and becomes -1; 0 unloads when idle; up to `MAX_KEEP_ALIVE_SECONDS`. NaN and anything
 * longer are refused with the reason (each API words it).
 */
export const boundKeepAlive = (seconds: number): Either.Either<number, string> =>
  Number.isNaN(seconds)
    ? Either.left("keep_alive must be a number of seconds, not NaN")
    : seconds < 0
    ? Either.right(-1)
    : seconds > MAX_KEEP_ALIVE_SECONDS
    ? Either.left(
      `keep_alive ${seconds} s is longer than the longest supported (${MAX_KEEP_ALIVE_SECONDS} s, about 292 years); ` +
        `a negative value (-1) keeps the model loaded`
    )
    : Either.right(seconds)
