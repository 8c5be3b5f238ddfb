#pragma once
// The streamed reply of the Responses API (stream: true): Server-Sent Events, each a JSON object with
// "type" and "sequence_number" (0, 1, ...): response.created, response.in_progress; the message as
// response.output_item.added, response.content_part.added, response.output_text.delta...,
// response.output_text.done, response.content_part.done, response.output_item.done (text is held back
// around a "<tool_call>" tag when tools are offered, as in chat completions); each function call as
// response.output_item.added, response.function_call_arguments.delta..., response.function_call_arguments.done,
// response.output_item.done; then response.completed (response.incomplete at max_output_tokens,
// response.failed when the generation failed) with the whole Response object. The deltas joined are the
// final text.
#include "agent/server/src/responses_run.h"

namespace mnemos::agent::server_detail {

// Runs job and streams its reply. Returns keep-alive.
awaitable<bool> respond_response_sse(request_ctx& cx, response_job job);

}  // namespace mnemos::agent::server_detail
