#pragma once
// Request bodies: the JSON object of a body, sampling parameters, message content and OpenAI messages.
// Every check is a value (invalid_argument naming the field); nothing here throws on client data.
#include <string>
#include <variant>
#include <vector>

#include "agent/server/src/common.h"
#include "agent/server/src/http_reply.h"
#include "engine/chat_template.h"
#include "engine/engine.h"
#include "engine/status.h"

namespace mnemos::agent::server_detail {

// Sampling and limits common to chat completions and session messages.
struct gen_params {
    int32_t max_tokens = -1;  // -1: default
    engine::sampler_params sampling;
    std::vector<std::string> stop;
    bool stream = false;
    int32_t n = 1;               // choices (1..8)
    bool logprobs = false;       // report log-probabilities of the sampled tokens
    int32_t top_logprobs = 0;    // alternatives per token (with logprobs)
    bool include_usage = false;  // stream_options.include_usage: a last chunk with "choices": [] and usage
};

// The largest max_tokens / max_completion_tokens a request may ask for (the context left caps it further).
inline constexpr int64_t k_max_max_tokens = 1 << 20;

// The body as a JSON object (bounded depth), or a 400 reply.
std::variant<json, reply> parse_body(const request_t& req);

// max_tokens / max_completion_tokens, temperature, top_p, top_k, min_p, penalties, seed, stop, stream,
// stream_options, n; OpenAI's defaults for what b leaves out, and a fresh random seed (below 2^52, exact in
// JavaScript) when b has none. Messages name the field first ("'max_tokens' must be ...") and the limit.
status parse_gen_params(const json& b, gen_params& g);

// Message content: a string, null, or an array of {"type": "text", "text": ...} parts; UTF-8.
status parse_content(const json& c, std::string& out);

// b["messages"] (at most k_max_messages): roles (developer = system), content, assistant tool_calls
// (rendered as the model's call tags) and tool results (named by their tool_call_id).
status parse_messages(const json& b, std::vector<engine::chat_message>& out);

// A generation request: its body, generation parameters and messages.
struct turn_request {
    json body;
    gen_params gen;
    std::vector<engine::chat_message> messages;
};
// The body (parse_body), its parameters (parse_gen_params) and its messages (read_messages: parse_messages,
// or the sessions API's own reader); a 400 reply naming what is wrong otherwise.
using messages_reader = status (*)(const json& b, std::vector<engine::chat_message>& out);
std::variant<turn_request, reply> parse_turn_request(const request_t& req, messages_reader read_messages);

}  // namespace mnemos::agent::server_detail
