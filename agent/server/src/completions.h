#pragma once
// POST /v1/completions: OpenAI's legacy text completions. The prompt is tokenized as is (no chat template; BOS
// as the model wants, control-token text kept as plain text), then sampled like a chat completion: n choices,
// stop, max_tokens, seed, streaming (text_completion chunks, then [DONE]), echo, and logprobs in the legacy
// shape {tokens, token_logprobs, top_logprobs, text_offset}.
#include "agent/server/src/api.h"

namespace mnemos::agent::server_detail {

awaitable<bool> handle_completions(request_ctx& cx);

}  // namespace mnemos::agent::server_detail
