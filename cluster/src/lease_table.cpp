#include "cluster/lease_table.h"

#include <nlohmann/json.hpp>

#include "cluster/subject_codec.h"
#include "memory/store.h"

namespace mnemos::cluster {

namespace {

std::string encode_owner(const std::string& node, const std::string& url) {
    return nlohmann::json{{"node", node}, {"url", url}}.dump();
}

// The lease in a stored value; node is empty for a released (or unreadable) one.
lease decode_owner(std::string_view session, const kv_entry& e) {
    lease l{std::string(session), "", "", e.revision};
    auto j = nlohmann::json::parse(e.value, nullptr, false);
    if (j.is_object()) {
        l.node = j.value("node", "");
        l.url = j.value("url", "");
    }
    return l;
}

status bad_id(std::string_view session) {
    return make_error(errc::invalid_argument, "bad session id '" + std::string(session) + "'");
}

}  // namespace

lease_table::lease_table(kv_bucket& bucket, std::string node_id, std::string url)
    : bucket_(bucket), node_id_(std::move(node_id)), url_(std::move(url)) {}

result<lease> lease_table::acquire(std::string_view session) {
    if (!memory::valid_session_id(session)) return bad_id(session);
    const std::string key = encode_token(session), mine = encode_owner(node_id_, url_);
    for (int attempt = 0; attempt < 8; ++attempt) {
        auto created = bucket_.create(key, mine);
        if (created) return lease{std::string(session), node_id_, url_, *created};
        if (created.error().code() != errc::already_exists) return created.error();
        auto now = bucket_.get(key);
        if (!now) {
            if (now.error().code() == errc::not_found) continue;  // expired in between: create again
            return now.error();
        }
        lease held = decode_owner(session, *now);
        if (!held.node.empty() && held.node != node_id_) return held;
        // Released, or ours from before (this node restarted): take it, revision-checked.
        auto updated = bucket_.update(key, mine, now->revision);
        if (updated) return lease{std::string(session), node_id_, url_, *updated};
        if (updated.error().code() != errc::busy) return updated.error();
    }
    return make_error(errc::unavailable, "session '" + std::string(session) + "': its lease kept changing");
}

status lease_table::renew(lease& l) {
    auto updated = bucket_.update(encode_token(l.session), encode_owner(node_id_, url_), l.revision);
    if (!updated) {
        if (updated.error().code() == errc::busy)
            return make_error(errc::busy, "lost the lease of session '" + l.session + "' (expired or taken)");
        return updated.error();
    }
    l.revision = *updated;
    return {};
}

status lease_table::release(const lease& l) {
    auto updated = bucket_.update(encode_token(l.session), "{}", l.revision);
    if (!updated && updated.error().code() == errc::busy)
        return make_error(errc::busy, "the lease of session '" + l.session + "' was already lost");
    return updated ? status{} : updated.error();
}

result<lease> lease_table::lookup(std::string_view session) {
    if (!memory::valid_session_id(session)) return bad_id(session);
    auto now = bucket_.get(encode_token(session));
    if (!now) return now.error();
    lease held = decode_owner(session, *now);
    if (held.node.empty()) return make_error(errc::not_found, "session '" + std::string(session) + "' is not owned");
    return held;
}

}  // namespace mnemos::cluster
