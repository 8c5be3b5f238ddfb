#include "cluster/nats_client.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "cluster/src/nats_internal.h"

namespace mnemos::cluster {

result<std::vector<std::string>> parse_url_list(std::string_view list) {
    std::vector<std::string> urls;
    size_t start = 0;
    while (start <= list.size()) {
        size_t comma = list.find(',', start);
        if (comma == std::string_view::npos) comma = list.size();
        std::string_view url = list.substr(start, comma - start);
        if (url.empty())
            return make_error(errc::invalid_argument, "empty URL in the cluster list '" + std::string(list) + "'");
        if (!url.starts_with("nats://") && !url.starts_with("tls://"))
            return make_error(errc::invalid_argument,
                              "cluster URL '" + std::string(url) + "' must start with nats:// or tls://");
        urls.emplace_back(url);
        start = comma + 1;
    }
    return urls;
}

client::impl::~impl() {
    if (js) jsCtx_Destroy(js);
    if (conn) {
        natsConnection_Close(conn);
        natsConnection_Destroy(conn);
    }
    if (opts) natsOptions_Destroy(opts);
}

namespace detail {

std::string describe(const char* what, natsStatus s, jsErrCode jerr) {
    std::string text = std::string(what) + ": " + natsStatus_GetText(s);
    const char* last = nats_GetLastError(nullptr);
    if (last && *last && std::string_view(last) != natsStatus_GetText(s)) text += std::string(" (") + last + ")";
    if (jerr) text += " (jetstream error " + std::to_string(int(jerr)) + ")";
    return text;
}

bool transient(natsStatus s, jsErrCode jerr) {
    if (jerr == JSClusterNotAvailErr || jerr == JSStreamOfflineErr || jerr == JSClusterNoPeersErr) return true;
    if (s == NATS_ERR) {  // the KV API reports JetStream errors as text only
        const char* last = nats_GetLastError(nullptr);
        if (last && (std::strstr(last, "no suitable peers") || std::strstr(last, "temporarily unavailable") ||
                     std::strstr(last, "stream is offline")))
            return true;
    }
    return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_DISCONNECTED ||
           s == NATS_CONNECTION_CLOSED || s == NATS_NO_SERVER || s == NATS_IO_ERROR || s == NATS_STALE_CONNECTION;
}

natsStatus with_retry(client::impl& c, const std::function<natsStatus(jsErrCode& jerr)>& op, jsErrCode& jerr) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(c.options.retry_ms);
    for (;;) {
        jerr = jsErrCode(0);
        natsStatus s = op(jerr);
        if (s == NATS_OK || !transient(s, jerr) || std::chrono::steady_clock::now() >= deadline) return s;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

}  // namespace detail

namespace {

status configure(client::impl& c) {
    const auto& o = c.options;
    std::vector<const char*> servers;
    for (const auto& u : o.urls) servers.push_back(u.c_str());
    natsStatus s = natsOptions_Create(&c.opts);
    if (s == NATS_OK) s = natsOptions_SetServers(c.opts, servers.data(), int(servers.size()));
    if (s == NATS_OK) s = natsOptions_SetName(c.opts, o.name.c_str());
    if (s == NATS_OK) s = natsOptions_SetTimeout(c.opts, o.timeout_ms);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(c.opts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(c.opts, 100);
    if (s == NATS_OK) s = natsOptions_SetNoRandomize(c.opts, false);
    if (s == NATS_OK) s = natsOptions_SetPingInterval(c.opts, 1000);
    if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(c.opts, 2);
    if (s != NATS_OK) return make_error(errc::invalid_argument, detail::describe("NATS options", s));
    return {};
}

}  // namespace

result<std::unique_ptr<client>> client::connect(const client_options& options) {
    if (options.urls.empty()) return make_error(errc::invalid_argument, "no NATS server URL given");
    auto c = std::make_unique<impl>();
    c->options = options;
    if (auto st = configure(*c); !st.ok()) return st;
    natsStatus s = natsConnection_Connect(&c->conn, c->opts);
    if (s != NATS_OK) return make_error(errc::unavailable, detail::describe("connecting to the NATS cluster", s));
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = options.timeout_ms;
    s = natsConnection_JetStream(&c->js, c->conn, &jo);
    if (s != NATS_OK) return make_error(errc::unavailable, detail::describe("JetStream context", s));
    jsAccountInfo* ai = nullptr;
    jsErrCode jerr{};
    c->options.retry_ms = std::max(options.retry_ms, options.connect_wait_ms);
    s = detail::with_retry(
        *c, [&](jsErrCode& e) { return js_GetAccountInfo(&ai, c->js, nullptr, &e); }, jerr);
    c->options.retry_ms = options.retry_ms;
    if (s != NATS_OK)
        return make_error(errc::unavailable, detail::describe("JetStream is not available on the cluster", s, jerr));
    jsAccountInfo_Destroy(ai);
    return std::unique_ptr<client>(new client(std::move(c)));
}

client::client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
client::~client() = default;

const client_options& client::options() const { return impl_->options; }

int64_t client::max_payload() const { return natsConnection_GetMaxPayload(impl_->conn); }

bool client::connected() const { return natsConnection_Status(impl_->conn) == NATS_CONN_STATUS_CONNECTED; }

std::string client::connected_url() const {
    char buf[512];
    if (natsConnection_GetConnectedUrl(impl_->conn, buf, sizeof buf) != NATS_OK) return "";
    return buf;
}

}  // namespace mnemos::cluster
