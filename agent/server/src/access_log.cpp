// The access log and the per-request metrics (access_log.h).
#include "agent/server/src/access_log.h"

#include <cmath>
#include <cstdio>

#include "agent/server/src/common.h"
#include "agent/server/src/server_state.h"

namespace mnemos::agent::server_detail {

void access_record::add_turn(const engine::finish_info& info) {
    n_turns++;
    n_prompt += info.n_prompt;
    n_cached += info.n_reused;
    n_generated += info.n_generated;
}

namespace {

std::string milliseconds_text(double seconds) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1fms", seconds * 1000);
    return buf;
}

// The path as the text line shows it: bytes outside printable ASCII, spaces and '%' as %XX (one field, one line).
std::string printable_path(const std::string& p) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : p) {
        if (c > 0x20 && c < 0x7f && c != '%') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// One object per line, its fields in a fixed order (ordered_json: the order written).
std::string json_line(const access_record& rec, double seconds) {
    nlohmann::ordered_json j;
    j["time"] = unix_now();
    j["method"] = rec.method;
    j["path"] = rec.path;
    j["endpoint"] = rec.endpoint;
    j["status"] = rec.status;
    j["duration_ms"] = std::round(seconds * 1e4) / 10;
    j["client"] = rec.client;
    if (!rec.key_name.empty()) j["key"] = rec.key_name;
    if (rec.n_turns > 0) {
        j["turns"] = rec.n_turns;
        j["prompt_tokens"] = rec.n_prompt;
        j["cached_tokens"] = rec.n_cached;
        j["generated_tokens"] = rec.n_generated;
    }
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

std::string access_line(const access_record& rec, double seconds, access_log_format format) {
    if (format == access_log_format::json) return json_line(rec, seconds);
    std::string s = "mnemos serve: " + rec.method + ' ' + printable_path(rec.path) + ' ' + std::to_string(rec.status) +
                    ' ' + milliseconds_text(seconds) + " client=" + rec.client;
    if (!rec.key_name.empty()) s += " key=" + rec.key_name;
    if (rec.n_turns > 0)
        s += " prompt=" + std::to_string(rec.n_prompt) + " cached=" + std::to_string(rec.n_cached) +
             " generated=" + std::to_string(rec.n_generated);
    return s;
}

void finish_request(server_state& st, access_record& rec) {
    if (rec.status == 0) rec.status = 499;  // nginx's "client closed request": it left before any answer
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - rec.start).count();
    const std::string status = std::to_string(rec.status);
    st.m.requests.add({rec.endpoint, status});
    st.m.request_duration.observe({rec.endpoint, status, st.model_id}, seconds);
    if (!st.opt.log_requests) return;
    const std::string line = access_line(rec, seconds, st.opt.log_format) + '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace mnemos::agent::server_detail
