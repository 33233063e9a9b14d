/** The package version, inlined by the bundler. */
export const VERSION = "0.1.0"
