/** Ports for tests. */
import * as net from "node:net"

/** A port nothing listens on: bound on 127.0.0.1, then closed (what a server that is down looks like). */
export const unusedPort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
