/**
 * llmspell/testing: mock layers for programs that use llmspell, so their tests run without a
 * server or a model file.
 */
export {}
