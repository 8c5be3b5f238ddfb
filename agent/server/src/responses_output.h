#pragma once
// The reply shapes of the Responses API: the Response object, its output items (an assistant message with
// output_text, function calls) and its usage; the same objects the stream's events carry.
#include <string>
#include <vector>

#include "agent/server/src/common.h"
#include "engine/engine.h"
#include "tools/tool_call_parser.h"

namespace mnemos::agent::server_detail {

// What every object of one response repeats.
struct response_head {
    std::string id;           // "resp_..."
    int64_t created_at = 0;   // unix seconds
    std::string model;        // the model id
    std::string previous_id;  // previous_response_id ("" none)
    std::string session_id;   // the session the response is stored in ("" not stored)
    json request;             // the request body (its settings are echoed)
};

// A generation's output, split into the text and the calls.
struct response_output {
    std::string text;                     // the message text (outside the calls)
    std::vector<tools::tool_call> calls;  // function calls, in order
    std::vector<std::string> call_ids;    // "call_..." of each call
    bool incomplete = false;              // stopped at max_output_tokens
};

// The output of a generation's text: with tools on, the calls in it (extract_tool_calls) and the text
// outside them; otherwise all of it as text.
response_output split_output(const std::string& text, const engine::finish_info& info, bool tools_on, bool forced);

// {"input_tokens", "input_tokens_details": {"cached_tokens"}, "output_tokens", "output_tokens_details":
// {"reasoning_tokens": 0}, "total_tokens"}.
json response_usage(const engine::finish_info& i);

// The assistant message item ("msg_..."), status "in_progress" | "completed" | "incomplete"; its one
// output_text part holds text (none while in progress).
json message_item(const response_head& h, const std::string& text, const char* status);
// The k-th function call item ("fc_..."), arguments as a JSON string ("" while in progress).
json call_item(const response_head& h, size_t k, const std::string& call_id, const std::string& name,
               const std::string& arguments, const char* status);
// The message item (when there is text or no call), then the calls.
json output_items(const response_head& h, const response_output& o);
// Whether output_items has a message item for o.
bool has_message_item(const response_output& o);

// The Response object: status "in_progress" | "completed" | "incomplete" (incomplete_details: reason
// "max_output_tokens"); usage null while in progress; "session_id" (not OpenAI's: the session that stores it)
// when stored.
json response_json(const response_head& h, const char* status, json output, json usage);

}  // namespace mnemos::agent::server_detail
