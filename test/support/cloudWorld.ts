/**
 * The cloud providers of the key-leak tests (test/cloudCli.test.ts, test/serveSecrets.test.ts):
 * distinctive keys, the fake OpenAI-compatible and Anthropic servers that expect them, and a
 * config naming them the three ways a key can come: `api_key = "${MY_OPENAI_KEY}"` (openai), a
 * literal `api_key` (the openai_compatible `vllm`), the conventional ANTHROPIC_API_KEY (anthropic).
 */
import { expect } from "vitest"
import { type FakeAnthropic, startFakeAnthropic } from "../fixtures/fakeAnthropic.js"
import { type FakeOpenAI, startFakeOpenAI } from "../fixtures/fakeOpenAI.js"

export const ENV_KEY = "sk-DISTINCTIVE-env-key-7f3a9c21e4"
export const FILE_KEY = "sk-DISTINCTIVE-file-key-b81d55aa02"
export const ANT_KEY = "sk-ant-DISTINCTIVE-key-0c9e4411"

export interface CloudWorld {
  readonly openai: FakeOpenAI
  /** An openai_compatible server (`vllm` in the config). */
  readonly proxy: FakeOpenAI
  readonly anthropic: FakeAnthropic
  /** The config's `[providers.*]` tables, as TOML lines. */
  readonly configLines: ReadonlyArray<string>
  /** The variables the config's keys come from. */
  readonly env: Readonly<Record<string, string>>
  readonly close: () => Promise<void>
}

export const startCloudWorld = async (): Promise<CloudWorld> => {
  const openai = await startFakeOpenAI({ apiKey: ENV_KEY, models: ["gpt-4o-mini"] })
  const proxy = await startFakeOpenAI({ apiKey: FILE_KEY, models: ["meta-llama/Llama-3.1-8B-Instruct"] })
  const anthropic = await startFakeAnthropic({ apiKey: ANT_KEY })
  return {
    openai,
    proxy,
    anthropic,
    configLines: [
      "[providers.openai]",
      `base_url = "${openai.baseUrl}"`,
      `api_key = "\${MY_OPENAI_KEY}"`,
      "[providers.vllm]",
      `provider_type = "openai_compatible"`,
      `base_url = "${proxy.baseUrl}"`,
      `api_key = "${FILE_KEY}"`,
      "[providers.anthropic]",
      `base_url = "${anthropic.baseUrl}"`
    ],
    env: { MY_OPENAI_KEY: ENV_KEY, ANTHROPIC_API_KEY: ANT_KEY },
    close: async () => {
      await Promise.all([openai.close(), proxy.close(), anthropic.close()])
    }
  }
}

/** None of `keys`, nor a recognisable tail of one, is in `text`. */
export const expectNoKey = (text: string, keys: ReadonlyArray<string>, what: string) => {
  for (const key of keys) {
    expect(text, what).not.toContain(key)
    expect(text, what).not.toContain(key.slice(-10))
  }
}
