#pragma once
// The native sessions API: /v1/sessions (list, create), /v1/sessions/{id} (metadata, delete),
// /v1/sessions/{id}/messages (one durable turn), /v1/sessions/{id}/events (the event log), and the
// shared prefixes /v1/prefixes[/{id}] that characters name in character.shared_prefix.
#include "agent/server/src/api.h"

namespace mnemos::agent::server_detail {

reply handle_list_sessions(request_ctx& cx);
reply handle_create_session(request_ctx& cx);
reply handle_get_session(request_ctx& cx);
reply handle_delete_session(request_ctx& cx);
reply handle_session_events(request_ctx& cx);
awaitable<bool> handle_session_message(request_ctx& cx);

reply handle_list_prefixes(request_ctx& cx);
reply handle_get_prefix(request_ctx& cx);
reply handle_put_prefix(request_ctx& cx);

}  // namespace mnemos::agent::server_detail
