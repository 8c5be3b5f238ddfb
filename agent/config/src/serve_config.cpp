// `mnemos serve` settings: the config file's "server" object and the flags (agent/serve_config.h).
#include "agent/config/serve_config.h"

#include <charconv>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tools/json_limits.h"

namespace mnemos::agent {

namespace {

using nlohmann::json;

// One setting, reachable as a config field ("server.<field>") and as a flag.
struct setting {
    const char* field;                                     // in "server"
    const char* flag;                                      // "--port"
    enum kind { text, integer, boolean, text_list } type;  // text_list: a JSON array of strings, a repeated flag
    int64_t min = 0, max = 0;                              // integers
};

// The order of the help text; every flag of serve but --config and --help.
const setting k_settings[] = {
    {"model", "--model", setting::text},
    {"store", "--store", setting::text},
    {"host", "--host", setting::text},
    {"port", "--port", setting::integer, 0, 65535},
    {"ctx", "--ctx", setting::integer, 0, 1 << 24},
    {"threads", "--threads", setting::integer, 0, 1024},
    {"io_threads", "--io-threads", setting::integer, 0, 256},
    {"max_body_bytes", "--max-body", setting::integer, 0, std::numeric_limits<int32_t>::max()},
    {"default_max_tokens", "--max-tokens", setting::integer, 0, 1 << 24},
    {"requests_per_minute", "--requests-per-minute", setting::integer, 0, 1000000},
    {"log", "--log", setting::boolean},
    {"log_format", "--log-format", setting::text},
    {"attention", "--attention", setting::text},
    {"sink_tokens", "--sink-tokens", setting::integer, 0, 1 << 24},
    {"window_tokens", "--window-tokens", setting::integer, 1, 1 << 24},
    {"select_pages", "--select-pages", setting::integer, 0, 1 << 24},
    {"kv_mb", "--kv-mb", setting::integer, 0, 1 << 22},
    {"cors_origins", "--cors-origin", setting::text_list},
    {"cluster", "--cluster", setting::text},
    {"node_id", "--node-id", setting::text},
    {"advertise", "--advertise", setting::text},
    {"lease_ttl_ms", "--lease-ttl-ms", setting::integer, 500, 3600000},
    {"cluster_replicas", "--cluster-replicas", setting::integer, 1, 5},
};

// The cluster mode settings (README "Cluster mode").
void assign_cluster(serve_settings& s, std::string_view f, const std::string& str, int64_t n) {
    if (f == "cluster")
        s.cluster = str;
    else if (f == "node_id")
        s.node_id = str;
    else if (f == "advertise")
        s.advertise = str;
    else if (f == "lease_ttl_ms")
        s.lease_ttl_ms = n;
    else if (f == "cluster_replicas")
        s.cluster_replicas = static_cast<int32_t>(n);
}

// Stores a checked value of setting `k` in s. Errors: a text value outside the setting's words.
status assign(serve_settings& s, const setting& k, const std::string& str, int64_t n, bool b) {
    const std::string_view f = k.field;
    if (f == "attention") {
        if (!engine::parse_attention_mode(str, &s.attention.mode))
            return make_error(errc::invalid_argument, "attention must be full, sparse or auto, got '" + str + "'");
        return {};
    }
    if (f == "log_format") {
        if (str != "text" && str != "json")
            return make_error(errc::invalid_argument, "log_format must be text or json, got '" + str + "'");
        s.server.log_format = str == "json" ? access_log_format::json : access_log_format::text;
        return {};
    }
    if (f == "cors_origins") {
        if (auto st = check_cors_origin(str); !st.ok()) return st;
        s.server.cors_origins.push_back(str);
        return {};
    }
    if (f == "model")
        s.model = str;
    else if (f == "store")
        s.store = str;
    else if (f == "host")
        s.server.host = str;
    else if (f == "port")
        s.server.port = static_cast<uint16_t>(n);
    else if (f == "ctx")
        s.n_ctx = static_cast<int32_t>(n);
    else if (f == "threads")
        s.n_threads = static_cast<int32_t>(n);
    else if (f == "io_threads")
        s.server.n_io_threads = static_cast<int>(n);
    else if (f == "max_body_bytes")
        s.server.max_body_bytes = static_cast<size_t>(n);
    else if (f == "default_max_tokens")
        s.server.default_max_tokens = static_cast<int32_t>(n);
    else if (f == "requests_per_minute")
        s.server.requests_per_minute = static_cast<int32_t>(n);
    else if (f == "log")
        s.server.log_requests = b;
    else if (f == "sink_tokens")
        s.attention.n_sink = static_cast<int32_t>(n);
    else if (f == "window_tokens")
        s.attention.n_window = static_cast<int32_t>(n);
    else if (f == "select_pages")
        s.attention.n_pages = static_cast<int32_t>(n);
    else if (f == "kv_mb")
        s.kv_bytes = static_cast<size_t>(n) << 20;
    else
        assign_cluster(s, f, str, n);
    return {};
}

std::string range_text(const setting& k) {
    return "an integer from " + std::to_string(k.min) + " to " + std::to_string(k.max);
}

}  // namespace

status apply_serve_config(const std::string& json_text, serve_settings& s) {
    if (tools::json_too_deep(json_text))
        return make_error(errc::invalid_argument, "config: " + tools::json_depth_message());
    const json j = json::parse(json_text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error(errc::invalid_argument, "config is not a JSON object");
    for (auto it = j.begin(); it != j.end(); ++it)
        if (it.key() != "keys" && it.key() != "requests_per_minute" && it.key() != "server")
            return make_error(errc::invalid_argument,
                              "unknown field '" + it.key() + "' (expected keys, requests_per_minute, server)");
    auto auth = parse_auth_config(json_text);
    if (!auth) return auth.error();
    if (j.contains("keys") && auth->keys.empty()) return make_error(errc::invalid_argument, "'keys' lists no keys");
    s.server.auth = std::move(auth.value());
    auto srv = j.find("server");
    if (srv == j.end()) return {};
    if (!srv->is_object()) return make_error(errc::invalid_argument, "'server' must be an object");
    for (auto it = srv->begin(); it != srv->end(); ++it) {
        const setting* k = nullptr;
        for (const auto& c : k_settings)
            if (it.key() == c.field) k = &c;
        const std::string where = "server." + it.key();
        if (!k) {
            std::string known;
            for (const auto& c : k_settings) known += (known.empty() ? "" : ", ") + std::string(c.field);
            return make_error(errc::invalid_argument, "unknown field '" + where + "' (expected " + known + ")");
        }
        const json& v = it.value();
        if (k->type == setting::text_list) {
            if (!v.is_array()) return make_error(errc::invalid_argument, where + " must be an array of strings");
            for (const auto& e : v) {
                if (!e.is_string()) return make_error(errc::invalid_argument, where + " must be an array of strings");
                if (auto st = assign(s, *k, e.get<std::string>(), 0, false); !st.ok())
                    return make_error(st.code(), where + ": " + st.message());
            }
        } else if (k->type == setting::text) {
            if (!v.is_string() || v.get<std::string>().empty())
                return make_error(errc::invalid_argument, where + " must be a non-empty string");
            if (auto st = assign(s, *k, v.get<std::string>(), 0, false); !st.ok())
                return make_error(st.code(), where + ": " + st.message());
        } else if (k->type == setting::boolean) {
            if (!v.is_boolean()) return make_error(errc::invalid_argument, where + " must be true or false");
            assign(s, *k, {}, 0, v.get<bool>());
        } else {
            if (!v.is_number_integer() || v.get<int64_t>() < k->min || v.get<int64_t>() > k->max)
                return make_error(errc::invalid_argument, where + " must be " + range_text(*k));
            assign(s, *k, {}, v.get<int64_t>(), false);
        }
    }
    return {};
}

result<serve_settings> parse_serve_args(const std::vector<std::string>& args) {
    serve_settings s;
    // First pass: --help, and the config file (the flags override it wherever they are).
    for (size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "-h" || args[i] == "--help") {
            s.help = true;
            return s;
        }
        if (args[i] == "--config") {
            if (i + 1 >= args.size()) return make_error(errc::invalid_argument, "--config needs a value");
            s.config_path = args[++i];
        }
    }
    if (!s.config_path.empty()) {
        std::ifstream f(s.config_path);
        if (!f) return make_error(errc::io_error, "--config: cannot read " + s.config_path);
        std::stringstream ss;
        ss << f.rdbuf();
        if (auto st = apply_serve_config(ss.str(), s); !st.ok())
            return make_error(st.code(), "--config " + s.config_path + ": " + st.message());
    }
    bool lists_from_flags = false;  // the first --cors-origin replaces the file's list
    for (size_t i = 0; i < args.size(); ++i) {
        std::string a = args[i];
        if (a == "--config") {
            ++i;
            continue;
        }
        if (a == "-m") a = "--model";
        if (a == "-t") a = "--threads";
        const setting* k = nullptr;
        for (const auto& c : k_settings)
            if (a == c.flag) k = &c;
        if (!k) return make_error(errc::invalid_argument, "unknown option '" + args[i] + "' (see --help)");
        if (k->type == setting::boolean) {
            assign(s, *k, {}, 0, true);
            continue;
        }
        if (i + 1 >= args.size()) return make_error(errc::invalid_argument, a + " needs a value");
        const std::string v = args[++i];
        if (k->type == setting::text_list && !lists_from_flags) {
            s.server.cors_origins.clear();
            lists_from_flags = true;
        }
        if (k->type == setting::text || k->type == setting::text_list) {
            if (v.empty()) return make_error(errc::invalid_argument, a + " needs a non-empty value");
            if (auto st = assign(s, *k, v, 0, false); !st.ok()) return make_error(st.code(), a + ": " + st.message());
            continue;
        }
        int64_t n = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (v.empty() || ec != std::errc{} || end != v.data() + v.size() || n < k->min || n > k->max)
            return make_error(errc::invalid_argument, a + " expects " + range_text(*k) + ", got '" + v + "'");
        assign(s, *k, {}, n, false);
    }
    return s;
}

}  // namespace mnemos::agent
