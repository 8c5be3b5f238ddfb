#include "agent/server/src/cluster_routes.h"

#include "agent/server/src/server_state.h"

namespace mnemos::agent::server_detail {

namespace {

std::optional<reply> redirect_to_owner(request_ctx& cx, const std::string& id, const std::string& target) {
    auto url = cluster_owner(*cx.st, id);
    if (!url && url.error().code() == errc::invalid_argument) return status_reply(url.error());
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

}  // namespace

result<std::string> cluster_owner(const server_state& st, const std::string& session_id) {
    if (!st.opt.session_owner) return std::string();
    return st.opt.session_owner(session_id);
}

std::optional<reply> cluster_redirect(request_ctx& cx, const std::string& target) {
    if (!cx.st->opt.session_owner || !target.starts_with("/v1/sessions/")) return std::nullopt;
    const std::string& id = cx.params.get("id");
    if (id.empty()) return std::nullopt;
    return redirect_to_owner(cx, id, target);
}

std::optional<reply> cluster_redirect_session(request_ctx& cx, const std::string& session_id) {
    if (!cx.st->opt.session_owner) return std::nullopt;
    return redirect_to_owner(cx, session_id, std::string(cx.req.target()));
}

reply handle_cluster(request_ctx& cx) {
    const auto& status = cx.st->opt.cluster_status;
    if (!status) return error_reply(errc::not_found, "not in cluster mode (mnemos serve --cluster)");
    return {200, status(), "application/json"};
}

}  // namespace mnemos::agent::server_detail
