/**
 * One parse for every server address people type (`--host`, LLMSPELL_HOST, OLLAMA_HOST,
 * `base_url`, `hub.endpoint`), and one redaction for every URL llmspell shows.
 */
import { describe, expect, it } from "vitest"
import {
  LLMSPELL_DEFAULT_PORT,
  OLLAMA_DEFAULT_PORT,
  parseServerUrl,
  redactUrl,
  redactUrlsIn,
  urlProblem
} from "../src/domain/ServerUrl.js"

describe("parseServerUrl: the short forms Ollama reads in OLLAMA_HOST, for every address", () => {
  it.each([
    ["127.0.0.1:11435", LLMSPELL_DEFAULT_PORT, "http://127.0.0.1:11435"],
    ["127.0.0.1", LLMSPELL_DEFAULT_PORT, "http://127.0.0.1:11435"],
    [":9000", LLMSPELL_DEFAULT_PORT, "http://127.0.0.1:9000"],
    ["box.lan", OLLAMA_DEFAULT_PORT, "http://box.lan:11434"],
    ["[::1]:8080", LLMSPELL_DEFAULT_PORT, "http://[::1]:8080"],
    ["[::1]", LLMSPELL_DEFAULT_PORT, "http://[::1]:11435"],
    ["::1", LLMSPELL_DEFAULT_PORT, "http://[::1]:11435"],
    ["0.0.0.0:11435", LLMSPELL_DEFAULT_PORT, "http://127.0.0.1:11435"],
    ["10.0.0.7:8000/v1", undefined, "http://10.0.0.7:8000/v1"],
    ["hf-mirror.example", undefined, "http://hf-mirror.example"],
    ["bob:pw@10.0.0.5:8080", OLLAMA_DEFAULT_PORT, "http://bob:pw@10.0.0.5:8080"],
    ["  10.0.0.5  ", OLLAMA_DEFAULT_PORT, "http://10.0.0.5:11434"]
  ])("%j (default port %s) → %s", (raw, port, url) => {
    expect(parseServerUrl(raw, port)).toBe(url)
    expect(urlProblem(parseServerUrl(raw, port))).toBeUndefined()
  })

  it("a URL written with a scheme is kept as written (a listen-everywhere host becomes loopback)", () => {
    expect(parseServerUrl("https://api.example.com/v1", OLLAMA_DEFAULT_PORT)).toBe("https://api.example.com/v1")
    expect(parseServerUrl("http://box", OLLAMA_DEFAULT_PORT)).toBe("http://box")
    expect(parseServerUrl("http://0.0.0.0:11435", LLMSPELL_DEFAULT_PORT)).toBe("http://127.0.0.1:11435")
    expect(parseServerUrl("http://[::]:11435", LLMSPELL_DEFAULT_PORT)).toBe("http://[::1]:11435")
  })

  it("what is still wrong after the parse is said by urlProblem, never thrown", () => {
    for (const raw of ["127.0.0.1:99999", "127.0.0.1:abc", "ftp://x", "http://", "host:1:2:3:x", "127.0.0.1:6000"]) {
      expect(() => parseServerUrl(raw, LLMSPELL_DEFAULT_PORT)).not.toThrow()
      expect(urlProblem(parseServerUrl(raw, LLMSPELL_DEFAULT_PORT)), raw).toBeDefined()
    }
  })
})

describe("redactUrl: userinfo and credential-looking parameters", () => {
  it.each([
    ["http://h:1/v1?api_key=S3CRET", "http://h:1/v1?api_key=<redacted>"],
    ["http://h:1/v1?api-version=2024-02-01&API_KEY=S3CRET", "http://h:1/v1?api-version=2024-02-01&API_KEY=<redacted>"],
    ["http://h:1/?token=S3CRET#frag", "http://h:1/?token=<redacted>#frag"],
    ["http://h/?access_token=S3CRET&sig=S3CRET&X-Amz-Signature=S3CRET&password=S3CRET&secret=S3CRET&apikey=S3CRET&key=S3CRET", "http://h/?access_token=<redacted>&sig=<redacted>&X-Amz-Signature=<redacted>&password=<redacted>&secret=<redacted>&apikey=<redacted>&key=<redacted>"],
    ["https://h/cb#access_token=S3CRET&state=1", "https://h/cb#access_token=<redacted>&state=1"],
    ["http://h/?%61pi_key=S3CRET", "http://h/?%61pi_key=<redacted>"],
    ["http://u:S3CRET@h:1/?auth=S3CRET", "http://<redacted>@h:1/?auth=<redacted>"],
    ["bob:S3CRET@h:1/?token=S3CRET", "<redacted>@h:1/?token=<redacted>"],
    ["h:1/?page=2", "h:1/?page=2"]
  ])("%s → %s", (raw, shown) => {
    expect(redactUrl(raw)).toBe(shown)
    expect(redactUrl(raw)).not.toContain("S3CRET")
  })

  it("finds every URL in a text (a library's message) and redacts each", () => {
    const text = `Api error with status 401. URL: https://hub.example/api/models?token=S3CRET, retried http://a:S3CRET@b/x`
    expect(redactUrlsIn(text)).toBe("Api error with status 401. URL: https://hub.example/api/models?token=<redacted>, retried http://<redacted>@b/x")
  })
})
