/**
 * What kind of address an IP address is, for the image URL fetcher's SSRF guard (layers/ImageFetch):
 * a server that fetches URLs its clients name must not reach its own loopback, the cloud metadata
 * service (169.254.169.254), the LAN or anything else that is not the public internet, unless told
 * to. Pure: parses the text of an address, no DNS.
 */

/** The classes of address; everything but `public` is refused by the default fetch policy. */
export type AddressClass =
  | "public"
  | "loopback"
  | "private"
  | "link-local"
  | "unspecified"
  | "multicast"
  | "shared (CGNAT)"
  | "reserved"

const parseIPv4 = (text: string): ReadonlyArray<number> | undefined => {
  const parts = text.split(".")
  if (parts.length !== 4) return undefined
  const out: Array<number> = []
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined
    const n = Number(part)
    if (n > 255) return undefined
    out.push(n)
  }
  return out
}

/** An IPv6 address as 8 numbers of 16 bits, or undefined (a zone `%eth0` is ignored). */
const parseIPv6 = (input: string): ReadonlyArray<number> | undefined => {
  let text = input.startsWith("[") && input.endsWith("]") ? input.slice(1, -1) : input
  const zone = text.indexOf("%")
  if (zone >= 0) text = text.slice(0, zone)
  if (!text.includes(":")) return undefined
  // a dotted IPv4 tail (::ffff:127.0.0.1) is the last two groups
  const lastColon = text.lastIndexOf(":")
  if (text.slice(lastColon + 1).includes(".")) {
    const v4 = parseIPv4(text.slice(lastColon + 1))
    if (v4 === undefined) return undefined
    text = `${text.slice(0, lastColon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`
  }
  const halves = text.split("::")
  if (halves.length > 2) return undefined
  const groups = (s: string) => (s === "" ? [] : s.split(":"))
  const head = groups(halves[0]!)
  const rest = halves.length === 2 ? groups(halves[1]!) : []
  const words: Array<number> = []
  for (const g of [...head, ...rest]) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined
  }
  const given = head.length + rest.length
  if (halves.length === 1 ? given !== 8 : given > 7) return undefined
  words.push(...head.map((g) => parseInt(g, 16)))
  if (halves.length === 2) for (let i = 0; i < 8 - given; i++) words.push(0)
  words.push(...rest.map((g) => parseInt(g, 16)))
  return words.length === 8 ? words : undefined
}

const classifyIPv4 = ([a, b, c]: ReadonlyArray<number>): AddressClass => {
  if (a === 0) return "unspecified" // 0.0.0.0/8: "this network"
  if (a === 127) return "loopback"
  if (a === 10 || (a === 172 && b! >= 16 && b! <= 31) || (a === 192 && b === 168)) return "private"
  if (a === 169 && b === 254) return "link-local"
  if (a === 100 && b! >= 64 && b! <= 127) return "shared (CGNAT)"
  if (a! >= 224 && a! <= 239) return "multicast"
  if (a! >= 240) return "reserved" // 240/4 and the broadcast address
  if (a === 192 && b === 0 && c === 0) return "reserved" // IETF protocol assignments
  if (a === 198 && (b === 18 || b === 19)) return "reserved" // benchmarking
  return "public"
}

const classifyIPv6 = (w: ReadonlyArray<number>): AddressClass => {
  const zeros = (from: number, to: number) => w.slice(from, to).every((x) => x === 0)
  const embedded = (hi: number, lo: number) => classifyIPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff])
  if (zeros(0, 8)) return "unspecified"
  if (zeros(0, 7) && w[7] === 1) return "loopback"
  // IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible (::a.b.c.d): the IPv4 address's class
  if (zeros(0, 5) && w[5] === 0xffff) return embedded(w[6]!, w[7]!)
  if (zeros(0, 6)) return embedded(w[6]!, w[7]!)
  // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they embed
  if (w[0] === 0x64 && w[1] === 0xff9b && zeros(2, 6)) return embedded(w[6]!, w[7]!)
  if (w[0] === 0x2002) return embedded(w[1]!, w[2]!)
  const first = w[0]!
  if ((first & 0xfe00) === 0xfc00) return "private" // fc00::/7 unique local
  if ((first & 0xffc0) === 0xfe80) return "link-local" // fe80::/10
  if ((first & 0xffc0) === 0xfec0) return "private" // fec0::/10, the old site-local
  if ((first & 0xff00) === 0xff00) return "multicast"
  if (first === 0x100 && zeros(1, 4)) return "reserved" // 100::/64 discard
  return "public"
}

/** The class of an IP address (IPv4, IPv6, bracketed or with a zone), or undefined when it is not one. */
export const classifyAddress = (address: string): AddressClass | undefined => {
  const v4 = parseIPv4(address)
  if (v4 !== undefined) return classifyIPv4(v4)
  const v6 = parseIPv6(address)
  return v6 !== undefined ? classifyIPv6(v6) : undefined
}

/** Whether a URL host is an IP address literal (`127.0.0.1`, `[::1]`) rather than a name to resolve. */
export const isAddressLiteral = (host: string): boolean => classifyAddress(host) !== undefined
