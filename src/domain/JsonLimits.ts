/**
 * Bounds on the untrusted JSON a generation request carries — tool and answer schemas, tool-call
 * arguments, tool results — checked by iterative walks (an explicit stack, never recursion), so
 * a value nested 10,000 deep is refused by name instead of overflowing the stack of whatever
 * walks it next (a schema converter, `JSON.stringify`, a worker's message encoding), and a schema
 * whose enum alone is a megabyte is refused before any grammar is built from it. The limits are
 * far above what real tools and schemas use. Pure: no I/O.
 */

/** The bounds, one table. */
export const JSON_LIMITS = {
  /** How deep arrays and objects may nest in any value of a request (a schema's levels count twice: `properties`, then the property). */
  maxDepth: 64,
  /** Sub-schemas and values in one schema. */
  maxSchemaNodes: 20_000,
  /** Values of one `enum`. */
  maxEnumValues: 1000,
  /** Bytes of the strings in one schema's `enum`s and `const`s together. */
  maxLiteralBytes: 64 * 1024,
  /** A `minLength`/`minItems`/`minProperties` no answer could meet within any context. */
  maxMinimum: 100_000
} as const

/** True when `value` nests arrays and objects deeper than `limit`. */
export const nestedDeeperThan = (value: unknown, limit: number): boolean => {
  const stack: Array<readonly [unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!
    if (typeof v !== "object" || v === null) continue
    if (depth + 1 > limit) return true
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1])
    }
  }
  return false
}

/** What makes a schema too costly: the keyword, where (a JSON pointer inside the schema), and why. */
export interface SchemaLimitProblem {
  readonly keyword: string
  readonly path: string
  readonly reason: string
}

const pointerStep = (s: string) => s.replace(/~/g, "~0").replace(/\//g, "~1")

const MINIMA = ["minLength", "minItems", "minProperties"] as const

/**
 * The first bound a schema breaks (depth, size, enum values, literal bytes, absurd minima), or
 * undefined. Walks the whole JSON of the schema iteratively, keywords and values alike.
 */
export const schemaBeyondLimits = (schema: unknown): SchemaLimitProblem | undefined => {
  if (nestedDeeperThan(schema, JSON_LIMITS.maxDepth)) {
    return { keyword: "(nesting)", path: "", reason: `the schema nests deeper than ${JSON_LIMITS.maxDepth} levels of JSON` }
  }
  let nodes = 0
  let literalBytes = 0
  const stack: Array<readonly [unknown, string]> = [[schema, ""]]
  while (stack.length > 0) {
    const [v, path] = stack.pop()!
    if (typeof v !== "object" || v === null) continue
    if (++nodes > JSON_LIMITS.maxSchemaNodes) {
      return { keyword: "(size)", path, reason: `the schema holds more than ${JSON_LIMITS.maxSchemaNodes} objects and arrays` }
    }
    if (Array.isArray(v)) {
      v.forEach((child, i) => stack.push([child, `${path}/${i}`]))
      continue
    }
    const node = v as Record<string, unknown>
    if (Array.isArray(node.enum)) {
      if (node.enum.length > JSON_LIMITS.maxEnumValues) {
        return { keyword: "enum", path, reason: `${node.enum.length} values; at most ${JSON_LIMITS.maxEnumValues} per enum` }
      }
      for (const value of node.enum) if (typeof value === "string") literalBytes += Buffer.byteLength(value)
    }
    if (typeof node.const === "string") literalBytes += Buffer.byteLength(node.const)
    if (literalBytes > JSON_LIMITS.maxLiteralBytes) {
      return { keyword: Array.isArray(node.enum) ? "enum" : "const", path, reason: `the schema's enum and const strings pass ${JSON_LIMITS.maxLiteralBytes} bytes` }
    }
    for (const keyword of MINIMA) {
      const bound = node[keyword]
      if (typeof bound === "number" && bound > JSON_LIMITS.maxMinimum) {
        return { keyword, path, reason: `${bound} is more than any answer could hold (at most ${JSON_LIMITS.maxMinimum})` }
      }
    }
    for (const [key, child] of Object.entries(node)) stack.push([child, `${path}/${pointerStep(key)}`])
  }
  return undefined
}
