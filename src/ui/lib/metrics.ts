/**
 * The Prometheus text exposition format (version 0.0.4) read for the Server view: samples with
 * their labels, grouped into families by `# TYPE`, and the few headline figures the page shows
 * (requests, generations, tokens, cached prompt tokens, time to first token, queue, crashes; llmspell's
 * names are in src/domain/Metrics.ts and src/serve/MetricsApi.ts). The headline
 * rules match names by pattern, not by exact spelling, so the page shows what a server exposes
 * (`llmspell_…`, or vLLM's and llama-server's equivalents) and leaves out what it does not. Pure.
 */

/** One sample line. */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** The samples of one metric family. */
export interface Family {
  readonly name: string
  readonly type: string
  readonly help: string | undefined
  readonly samples: ReadonlyArray<Sample>
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?\s*$/

const parseValue = (text: string): number =>
  text === "+Inf" ? Infinity : text === "-Inf" ? -Infinity : text === "NaN" ? NaN : Number(text)

const parseLabels = (text: string): Record<string, string> => {
  const labels: Record<string, string> = {}
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/gy
  let m: RegExpExecArray | null
  while ((m = re.exec(text)) !== null) {
    labels[m[1]!] = m[2]!.replace(/\\(["\\n])/g, (_, c: string) => (c === "n" ? "\n" : c))
  }
  return labels
}

/** The families of an exposition; lines that do not parse are skipped. */
export const parseMetrics = (text: string): Array<Family> => {
  const types = new Map<string, string>()
  const helps = new Map<string, string>()
  const samples: Array<Sample> = []
  for (const raw of text.split("\n")) {
    const line = raw.trim()
    if (line === "") continue
    const meta = /^#\s+(TYPE|HELP)\s+(\S+)\s*(.*)$/.exec(line)
    if (meta !== null) {
      if (meta[1] === "TYPE") types.set(meta[2]!, meta[3]!.trim())
      else helps.set(meta[2]!, meta[3]!)
      continue
    }
    if (line.startsWith("#")) continue
    const m = SAMPLE.exec(line)
    if (m === null) continue
    const value = parseValue(m[4]!)
    if (Number.isNaN(value) && m[4] !== "NaN") continue
    samples.push({ name: m[1]!, labels: m[3] !== undefined ? parseLabels(m[3]) : {}, value })
  }
  const familyOf = (name: string): string => {
    if (types.has(name)) return name
    for (const suffix of ["_bucket", "_sum", "_count", "_total", "_created"]) {
      const base = name.endsWith(suffix) ? name.slice(0, -suffix.length) : undefined
      if (base !== undefined && types.has(base)) return base
    }
    return name
  }
  const families = new Map<string, Array<Sample>>()
  for (const s of samples) {
    const key = familyOf(s.name)
    families.set(key, [...(families.get(key) ?? []), s])
  }
  return [...families].map(([name, list]) => ({ name, type: types.get(name) ?? "untyped", help: helps.get(name), samples: list }))
}

/** The sum of a family's plain samples (a counter or gauge over all its label sets). */
export const total = (family: Family): number =>
  family.samples.filter((s) => !/_(bucket|sum|count|created)$/.test(s.name) || family.type === "counter" || family.type === "gauge")
    .reduce((sum, s) => sum + (Number.isFinite(s.value) ? s.value : 0), 0)

/**
 * A quantile of a histogram over all its label sets, by linear interpolation inside the bucket
 * that holds it (what Prometheus's `histogram_quantile` does); undefined with no observations.
 */
export const histogramQuantile = (family: Family, q: number): number | undefined => {
  const buckets = new Map<number, number>()
  for (const s of family.samples) {
    if (!s.name.endsWith("_bucket") || s.labels["le"] === undefined) continue
    const le = parseValue(s.labels["le"])
    buckets.set(le, (buckets.get(le) ?? 0) + s.value)
  }
  const sorted = [...buckets].sort((a, b) => a[0] - b[0])
  const count = sorted.at(-1)?.[1] ?? 0
  if (count <= 0) return undefined
  const rank = q * count
  let lower = 0
  let below = 0
  for (const [le, cumulative] of sorted) {
    if (cumulative >= rank) {
      if (!Number.isFinite(le)) return lower
      const inBucket = cumulative - below
      return inBucket <= 0 ? le : lower + ((le - lower) * (rank - below)) / inBucket
    }
    lower = le
    below = cumulative
  }
  return lower
}

/** One headline figure. */
export interface Headline {
  readonly label: string
  readonly value: number
  readonly unit: "count" | "seconds" | "bytes"
}

const RULES: ReadonlyArray<{ label: string; pattern: RegExp; kind: "total" | "p50" | "p95"; unit: Headline["unit"] }> = [
  { label: "Requests", pattern: /^(llmspell_(http_)?requests_total|llmspell_requests)$/, kind: "total", unit: "count" },
  { label: "Generations", pattern: /^(llmspell_generations_total|vllm:request_success(_total)?)$/, kind: "total", unit: "count" },
  { label: "Prompt tokens", pattern: /^(llmspell_prompt_tokens(_total)?|vllm:prompt_tokens(_total)?|llamacpp:prompt_tokens(_total)?)$/, kind: "total", unit: "count" },
  { label: "Cached prompt tokens", pattern: /^llmspell_.*(cached_prompt_tokens|prompt_tokens_cached|prompt_cache_hit_tokens)(_total)?$/, kind: "total", unit: "count" },
  { label: "Completion tokens", pattern: /^(llmspell_(completion|generation|output)_tokens(_total)?|vllm:generation_tokens(_total)?|llamacpp:tokens_predicted(_total)?)$/, kind: "total", unit: "count" },
  { label: "Time to first token (median)", pattern: /^(llmspell_.*time_to_first_token.*seconds|vllm:time_to_first_token_seconds)$/, kind: "p50", unit: "seconds" },
  { label: "Time to first token (p95)", pattern: /^(llmspell_.*time_to_first_token.*seconds|vllm:time_to_first_token_seconds)$/, kind: "p95", unit: "seconds" },
  { label: "Queue", pattern: /^(llmspell_.*queue_(depth|length|size)|llmspell_requests_waiting|vllm:num_requests_waiting|llamacpp:requests_deferred)$/, kind: "total", unit: "count" },
  { label: "Worker crashes", pattern: /^llmspell_.*worker_(crashes|restarts)(_total)?$/, kind: "total", unit: "count" },
  { label: "Model memory", pattern: /^llmspell_.*model.*(memory|ram)_bytes$/, kind: "total", unit: "bytes" }
]

/** The headline figures an exposition has, in a fixed order. */
export const headlines = (families: ReadonlyArray<Family>): Array<Headline> =>
  RULES.flatMap((rule) => {
    const family = families.find((f) => rule.pattern.test(f.name))
    if (family === undefined) return []
    const value = rule.kind === "total" ? total(family) : histogramQuantile(family, rule.kind === "p50" ? 0.5 : 0.95)
    return value === undefined ? [] : [{ label: rule.label, value, unit: rule.unit }]
  })
