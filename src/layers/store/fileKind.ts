/**
 * What a path that is not a regular file is, in words, for the errors that refuse it (a config
 * file or a model path that is a FIFO, a device, a directory): opening those blocks or never ends.
 */
import type { Stats } from "node:fs" // a type only: the Stats node's stat returns

/** "a directory", "a FIFO (named pipe)", … for a stat that is not a regular file. */
export const fileKind = (stat: Stats): string =>
  stat.isDirectory()
    ? "a directory"
    : stat.isFIFO()
    ? "a FIFO (named pipe)"
    : stat.isSocket()
    ? "a socket"
    : stat.isCharacterDevice()
    ? "a character device"
    : stat.isBlockDevice()
    ? "a block device"
    : "not a regular file"
