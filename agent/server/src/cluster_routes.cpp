#include "agent/server/src/cluster_routes.h"

#include "agent/server/src/server_state.h"

namespace mnemos::agent::server_detail {

std::optional<reply> cluster_redirect(request_ctx& cx, const std::string& target) {
    const auto& owner = cx.st->opt.session_owner;
    if (!owner || !target.starts_with("/v1/sessions/")) return std::nullopt;
    const std::string& id = cx.params.get("id");
    if (id.empty()) return std::nullopt;
    auto url = owner(id);
    if (!url)
        return error_reply(errc::unavailable, "session '" + id + "': its owner is unknown: " + url.error().message());
    if (url->empty()) return std::nullopt;
    std::string location = *url;
    while (!location.empty() && location.back() == '/') location.pop_back();
    location += target;
    reply r = json_reply({{"redirect", location}, {"session_id", id}}, 307);
    r.headers.emplace_back("Location", location);
    return r;
}

reply handle_cluster(request_ctx& cx) {
    const auto& status = cx.st->opt.cluster_status;
    if (!status) return error_reply(errc::not_found, "not in cluster mode (mnemos serve --cluster)");
    return {200, status(), "application/json"};
}

}  // namespace mnemos::agent::server_detail
