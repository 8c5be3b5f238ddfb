#pragma once
// Matching a chat completion's messages against a session's log ("session_id" on chat completions): a client
// that resends its whole history must have only the new tail appended, and one whose history contradicts the
// log must learn where. Pure functions (no server types); public for tests.
//
// The log is the session's messages; its first `n_own` (0 or 1) are the session's own system message (from its
// character or agent settings), which a client never sends: they are left out of the comparison (unless the
// request starts with that very message). The request is a resent history when it holds an assistant or system
// message, or has two or more messages and starts with the log's first one; otherwise its messages are all new
// (a client sending only its new message, as the sessions API does). A resent history must repeat the log
// message by message and add at least one more.
#include <cstddef>
#include <string>
#include <vector>

#include "engine/chat_template.h"

namespace mnemos::agent::server_detail {

struct history_match {
    enum kind_t {
        append,       // tail: the messages to append
        conflict,     // index: the first request message that differs from the log; message says how
        nothing_new,  // the request repeats (part of) the log and adds nothing
    } kind = append;
    std::vector<engine::chat_message> tail;
    size_t index = 0;
    std::string message;
};

// Whether two messages say the same: same role and content up to surrounding whitespace; assistant messages
// by their text and tool calls (names and argument JSON, however the calls were written); tool results by
// their content (and the tool's name when both name it).
bool same_message(const engine::chat_message& a, const engine::chat_message& b);

history_match match_history(const std::vector<engine::chat_message>& log, size_t n_own,
                            const std::vector<engine::chat_message>& request);

}  // namespace mnemos::agent::server_detail
