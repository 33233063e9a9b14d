/**
 * The Prometheus text exposition format (version 0.0.4), written from Effect's metric snapshot
 * and from gauges read at scrape time. One `# HELP` and `# TYPE` per family, then its samples;
 * histograms as cumulative `_bucket{le=…}` lines ending at `+Inf`, `_sum` and `_count`. Label
 * values are escaped (backslash, quote, newline) and HELP text too (backslash, newline). Pure.
 */
import * as MetricKeyType from "effect/MetricKeyType"
import type * as MetricPair from "effect/MetricPair"
import * as MetricState from "effect/MetricState"

/** The content type of the format. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

/** Labels of a sample. */
export type Labels = Readonly<Record<string, string>>

/** One histogram series. */
export interface HistogramSeries {
  readonly labels: Labels
  /** Cumulative counts by upper bound, ascending. */
  readonly buckets: ReadonlyArray<readonly [number, number]>
  readonly sum: number
  readonly count: number
}

/** A family of samples. */
export type Family =
  | { readonly type: "counter" | "gauge"; readonly name: string; readonly help: string; readonly samples: ReadonlyArray<{ readonly labels: Labels; readonly value: number }> }
  | { readonly type: "histogram"; readonly name: string; readonly help: string; readonly series: ReadonlyArray<HistogramSeries> }

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const escapeHelp = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const number = (value: number): string =>
  value === Infinity ? "+Inf" : value === -Infinity ? "-Inf" : Number.isNaN(value) ? "NaN" : String(value)

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

const labelText = (labels: Labels, extra?: readonly [string, string]): string => {
  const pairs = Object.entries(labels)
    .filter(([k]) => LABEL_NAME.test(k) && k !== "le")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  if (extra !== undefined) pairs.push([extra[0], extra[1]])
  return pairs.length === 0 ? "" : `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`
}

/** The exposition of families, in the order given. */
export const render = (families: ReadonlyArray<Family>): string => {
  const lines: Array<string> = []
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`)
    lines.push(`# TYPE ${family.name} ${family.type}`)
    if (family.type === "histogram") {
      for (const s of family.series) {
        let last = 0
        for (const [le, cumulative] of s.buckets) {
          if (le === Infinity) continue
          lines.push(`${family.name}_bucket${labelText(s.labels, ["le", number(le)])} ${cumulative}`)
          last = cumulative
        }
        lines.push(`${family.name}_bucket${labelText(s.labels, ["le", "+Inf"])} ${Math.max(last, s.count)}`)
        lines.push(`${family.name}_sum${labelText(s.labels)} ${number(s.sum)}`)
        lines.push(`${family.name}_count${labelText(s.labels)} ${s.count}`)
      }
    } else {
      for (const s of family.samples) lines.push(`${family.name}${labelText(s.labels)} ${number(s.value)}`)
    }
  }
  return `${lines.join("\n")}\n`
}

const labelsOf = (pair: MetricPair.MetricPair.Untyped): Labels =>
  Object.fromEntries(pair.metricKey.tags.map((t) => [t.key, t.value]))

/**
 * Families of Effect's metric snapshot for the given catalogue (name, help, type), in its order:
 * a family with no sample yet is listed with its HELP and TYPE only. Metrics outside the
 * catalogue (a library user's own) are left out.
 */
export const fromSnapshot = (
  catalogue: ReadonlyArray<{ readonly name: string; readonly help: string; readonly type: "counter" | "histogram" }>,
  snapshot: ReadonlyArray<MetricPair.MetricPair.Untyped>
): Array<Family> =>
  catalogue.map((info): Family => {
    const pairs = snapshot.filter((p) => p.metricKey.name === info.name)
    if (info.type === "histogram") {
      return {
        type: "histogram",
        name: info.name,
        help: info.help,
        series: pairs.flatMap((p) =>
          MetricKeyType.isHistogramKey(p.metricKey.keyType) && MetricState.isHistogramState(p.metricState)
            ? [{ labels: labelsOf(p), buckets: p.metricState.buckets, sum: p.metricState.sum, count: p.metricState.count }]
            : []
        )
      }
    }
    return {
      type: "counter",
      name: info.name,
      help: info.help,
      samples: pairs.flatMap((p) =>
        MetricState.isCounterState(p.metricState) ? [{ labels: labelsOf(p), value: Number(p.metricState.count) }] : []
      )
    }
  })
