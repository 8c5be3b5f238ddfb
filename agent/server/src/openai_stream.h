#pragma once
// The streaming (SSE) half of chat completions: chat.completion.chunk events, content held back around
// a "<tool_call>" tag when tools are offered, the calls as tool_calls deltas, the finish chunk (with
// "mnemos": {"seed", "context"?}), with stream_options.include_usage a chunk with "choices": [] and the usage
// (as OpenAI sends it), then [DONE].
#include <string>

#include "agent/server/src/api.h"
#include "agent/server/src/engine_bridge.h"

namespace mnemos::agent::server_detail {

// What every chunk of one completion repeats.
struct completion_ids {
    std::string id;              // "chatcmpl-..."
    int64_t created;             // unix seconds
    std::string model;           // the model id
    std::string sid;             // the session ("" without one)
    int64_t seed = 0;            // the sampler's seed (the request's, or a random one), reported as "mnemos": {"seed"}
    bool include_usage = false;  // stream_options.include_usage: "usage": null on chunks, then a usage chunk
};

// One chat.completion.chunk of choice index (finish: null while streaming; "usage": null with
// ids.include_usage).
json chunk_json(const completion_ids& ids, const json& delta, const char* finish, int32_t index = 0);

// Streaming with tools offered: content is sent up to a "<tool_call>" tag
// (a partial tag at the end is held back); everything after it is a call.
struct tool_stream {
    std::string text;  // all output so far
    size_t sent = 0;   // bytes of text sent as content
    bool in_call = false;
    bool forced = false;  // the whole output is a call
};

// The bytes of t.text that may be sent as content now.
std::string tool_stream_take(tool_stream& t);

// Runs r as n choices (choices.h) and streams their reply as SSE (chunks carry their choice's index, and with
// r.logprobs the logprobs of their tokens); ends the session's turn when s is set (n is 1 then). Returns keep-alive.
awaitable<bool> complete_sse(request_ctx& cx, const session_ptr& s, engine::request r, context_window cw,
                             const completion_ids& ids, bool tools_on, bool forced, int32_t n = 1);

}  // namespace mnemos::agent::server_detail
