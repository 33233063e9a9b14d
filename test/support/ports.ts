/** Ports for tests. */
import { readFileSync } from "node:fs"
import * as net from "node:net"

// Every server of the suite (and of a second copy running beside it) listens on port 0, which the
// kernel serves from ip_local_port_range. A port bound and closed inside that range goes back to the
// pool: over a test file's minutes, another fake may be given it, and "the server that is down"
// answers. Below the range, no `listen(0)` ever lands.
const ephemeralLow = (): number => {
  try {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)
    return Number(low)
  } catch {
    return 0
  }
}

const refuses = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1" })
    socket.once("connect", () => (socket.destroy(), resolve(false)))
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"))
  })

const boundThenClosed = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/**
 * A port nothing listens on (what a server that is down looks like): one below the kernel's ephemeral
 * range that refuses connections now, so no server started with port 0 can take it later.
 */
export const unusedPort = async (): Promise<number> => {
  // From 20000: above the ports services and fetch's "bad ports" (up to 10080) use.
  const low = ephemeralLow()
  if (low > 21_000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = 20_000 + Math.floor(Math.random() * (low - 20_000))
      if (await refuses(port)) return port
    }
  }
  return boundThenClosed()
}
