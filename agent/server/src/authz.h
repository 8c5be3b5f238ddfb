#pragma once
// Authorization beyond reading and talking (auth.h): who may write which roles into a session's history, choose
// its tools and see its settings; who may read and write shared prefixes and read /metrics; and the prefix-cache
// scope of a caller's stateless requests. README "Threat model" states the rules.
#include <optional>
#include <span>
#include <string>

#include "agent/core/context_window.h"
#include "agent/core/session.h"
#include "agent/server/src/auth.h"
#include "agent/server/src/http_reply.h"

namespace mnemos::agent::server_detail {

// Owns s: an admin key (or open access), or the key whose name created it. Owners may write any role into its
// history, choose its tools (tool_choice) and see its agent settings.
bool owns(const caller& c, const session& s);

// Why c may not append msgs to s's history ("role 'system' ..."), or nullopt. Without owning s a caller may
// send only "user" messages and "tool" results.
std::optional<std::string> role_refusal(const caller& c, const session& s, std::span<const engine::chat_message> msgs);
// The same as a 403 reply (param "messages").
std::optional<reply> refuse_roles(const caller& c, const session& s, std::span<const engine::chat_message> msgs);

// Shared prefixes: read (list, get, name one in a character) and write (PUT). Admin keys both; open access both.
bool may_read_prefixes(const caller& c);
bool may_write_prefixes(const caller& c);
// GET /metrics: admin keys, keys with "metrics": true, open access.
bool may_see_metrics(const caller& c);

// Sets plan.scope for a stateless request of c (no session): with API keys configured, blocks are salted by
// the key's name past the longest shared prefix c may read that the prompt starts with; open access: none.
void scope_stateless(const server_state& st, const caller& c, turn_plan& plan);

}  // namespace mnemos::agent::server_detail
