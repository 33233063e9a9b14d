/**
 * `[serve.aliases]` applied to every API of `llmspell serve`: the server's LocalLLM, seen through
 * the aliases, reads and runs the spec an alias names wherever a request names a model (Ollama's,
 * OpenAI's and Anthropic's routes alike), and the listings show the aliases as model ids. Only
 * operations that read or run a model follow an alias; pull, delete and verify take the name as
 * given, so an alias can never make a request delete the model it points at.
 */
import type { ModelAlias } from "../domain/ModelAliases.js"
import { isGlob, resolveAlias } from "../domain/ModelAliases.js"
import type { LocalLLMService } from "../services/LocalLLM.js"

/** The service with aliases resolved in every spec a client gives to read or run a model. */
export const withAliases = (llm: LocalLLMService, aliases: ReadonlyArray<ModelAlias>): LocalLLMService => {
  if (aliases.length === 0) return llm
  const spec = (requested: string) => resolveAlias(aliases, requested)
  return {
    ...llm,
    resolve: (s) => llm.resolve(spec(s)),
    info: (s) => llm.info(spec(s)),
    generate: (s, request) => llm.generate(spec(s), request),
    run: (s, request) => llm.run(spec(s), request),
    embed: (s, inputs) => llm.embed(spec(s), inputs),
    rerank: (s, request) => llm.rerank(spec(s), request),
    unload: (s) => llm.unload(spec(s)),
    keepAlive: (s, seconds) => llm.keepAlive(spec(s), seconds),
    load: (s, seconds) => llm.load(spec(s), seconds)
  }
}

/** The aliases a listing shows as model ids: the exact names (a glob is no name a client could pick). */
export const listedAliases = (aliases: ReadonlyArray<ModelAlias>): ReadonlyArray<ModelAlias> =>
  aliases.filter((a) => !isGlob(a.name))
