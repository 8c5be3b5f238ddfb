#pragma once
// One response's generation: its engine request (with the tools' grammar), and its end: the session's turn
// ended with the reply and the response stored after it (store: true). The JSON reply is here; the
// streamed one is responses_stream.h.
#include <memory>
#include <string>

#include "agent/core/session.h"
#include "agent/server/src/api.h"
#include "agent/server/src/engine_bridge.h"
#include "agent/server/src/responses_output.h"
#include "agent/tooling/openai_tools.h"

namespace mnemos::agent::server_detail {

// A response ready to generate.
struct response_job {
    response_head head;
    session_ptr s;                            // the chain's session, in a turn begun by begin_turn (null: not stored)
    turn_plan plan;                           // the prompt
    std::string system;                       // the system text in effect for the chain after this response
    std::shared_ptr<const chat_tools> tools;  // null: plain text
    gen_params gen;
    bool tools_on() const { return tools && tools->choice != tool_choice::none; }
    bool forced() const { return tools && tools->forced_call; }
};

// The engine request of job (make_request, then the tools' constraint). Errors: context_exceeded (the
// session's turn is ended without a reply).
result<engine::request> response_request_of(server_state& st, response_job& job);

// Ends the session's turn with the generation (the reply is appended unless it failed) and stores the
// Response object `response` after it. Without a session: nothing. Errors: the store's.
status finish_response(server_state& st, const response_job& job, const turn_outcome& out, const response_output& o,
                       const json& response);

// Runs job and answers with the Response object (or the error of a failed generation). Returns keep-alive.
awaitable<bool> respond_response_json(request_ctx& cx, response_job job);

}  // namespace mnemos::agent::server_detail
