#pragma once
// The sources of the built-in recall and note tools for server-side agent
// sessions: the session's own durable event log.
#include <memory>

#include "agent/core/runtime.h"
#include "tools/builtins.h"

namespace mnemos::agent {

// recall's source: the session's durable event log (message and note events, never system messages;
// seq = position in the log).
std::shared_ptr<tools::history_source_i> make_event_history(session_store_i& store);
// note's store: each note is an event {"type": "note", "id", "text", "ts"} in the session's log.
std::shared_ptr<tools::notes_store_i> make_event_notes(session_manager& sessions);

}  // namespace mnemos::agent
