// Authorization of roles, tools, prefixes and metrics, and the cache scope of stateless requests (authz.h).
#include "agent/server/src/authz.h"

#include <algorithm>

#include "agent/core/cache_scope.h"
#include "agent/core/session_manager.h"
#include "agent/server/src/server_state.h"

namespace mnemos::agent::server_detail {

bool owns(const caller& c, const session& s) { return c.admin() || s.owner_key == c.key->name; }

std::optional<std::string> role_refusal(const caller& c, const session& s, std::span<const engine::chat_message> msgs) {
    if (owns(c, s)) return std::nullopt;
    for (const auto& m : msgs)
        if (m.role != "user" && m.role != "tool")
            return "role '" + m.role + "'" + (m.role == "system" ? std::string(" (or 'developer')") : std::string()) +
                   " in session '" + s.id +
                   "' needs a key that owns or administers it; this key may send only 'user' and 'tool' messages";
    return std::nullopt;
}

std::optional<reply> refuse_roles(const caller& c, const session& s, std::span<const engine::chat_message> msgs) {
    auto why = role_refusal(c, s, msgs);
    if (!why) return std::nullopt;
    return error_reply(http_refusal::forbidden, *why, {"messages", nullptr});
}

bool may_read_prefixes(const caller& c) { return c.admin() || c.key->prefixes != prefix_grant::none; }

bool may_write_prefixes(const caller& c) { return c.admin() || c.key->prefixes == prefix_grant::write; }

bool may_see_metrics(const caller& c) { return c.admin() || c.key->metrics; }

void scope_stateless(const server_state& st, const caller& c, turn_plan& plan) {
    plan.scope = {};
    if (!c.key) return;  // open access: one principal
    plan.scope.salt = principal_salt("key:" + c.key->name);
    if (!may_read_prefixes(c)) return;
    for (const auto& [id, text] : st.sessions->shared_prefixes())
        plan.scope.n_shared = std::max(plan.scope.n_shared, shared_prefix_tokens(st.runner->mdl(), plan.prompt, text));
}

}  // namespace mnemos::agent::server_detail
