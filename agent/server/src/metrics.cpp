// Counters and GET /metrics (metrics.h).
#include "agent/server/src/metrics.h"

#include <cstdio>

#include "agent/core/build_info.h"
#include "agent/server/src/server_state.h"

namespace mnemos::agent::server_detail {

void unreported_error(server_state& st, const char* what, const status& s) {
    if (s.ok()) return;
    st.m.n_unreported++;
    std::fprintf(stderr, "mnemos serve: %s: %s\n", what, s.to_string().c_str());
}

namespace {

void write_build_info(std::string& out, const std::string& model) {
    const build_info& b = this_build();
    prom::write_header(out, "mnemos_build_info", "gauge", "always 1; the labels say what this binary is and serves");
    out += "mnemos_build_info{version=\"" + prom::escape_label_value(b.version) + "\",commit=\"" +
           prom::escape_label_value(b.commit) + "\",build_type=\"" + prom::escape_label_value(b.build_type) +
           "\",cpu=\"" + prom::escape_label_value(b.cpu) + "\",model=\"" + prom::escape_label_value(model) + "\"} 1\n";
}

}  // namespace

// One metric() line per counter: long, but a flat list.
std::string metrics_text(const server_state& st) {
    const auto es = st.runner->stats();
    const auto kv = st.runner->kv_stats();
    std::string o;
    auto metric = [&](const char* name, const char* type, const char* help, int64_t v) {
        prom::write_single(o, name, type, help, static_cast<double>(v));
    };
    write_build_info(o, st.model_id);
    st.m.requests.write(o);
    st.m.request_duration.write(o);
    st.runner->metrics().write(o);
    metric("mnemos_http_client_errors_total", "counter", "4xx responses", st.m.n_4xx.load());
    metric("mnemos_http_rate_limited_total", "counter", "requests refused by a rate limit (429)",
           st.m.n_rate_limited.load());
    metric("mnemos_context_truncated_total", "counter",
           "generations whose history was longer than the window (first block + recent window kept)",
           st.m.n_truncated.load());
    metric("mnemos_http_server_errors_total", "counter", "5xx responses", st.m.n_5xx.load());
    metric("mnemos_connections", "gauge", "open connections", st.m.n_connections.load());
    metric("mnemos_active_turns", "gauge", "generations of this server in progress", st.m.n_active_turns.load());
    metric("mnemos_waiting_turns", "gauge", "session turns waiting for an earlier turn of their session",
           st.turns->n_waiting());
    metric("mnemos_unreported_errors_total", "counter", "errors no client could be told of (logged)",
           st.m.n_unreported.load());
    metric("mnemos_accept_errors_total", "counter", "failed accepts (out of file descriptors: retried every 100 ms)",
           st.m.n_accept_errors.load());
    metric("mnemos_engine_steps_total", "counter", "engine steps", es.n_steps);
    metric("mnemos_prefill_tokens_total", "counter", "prompt tokens computed by the engine", es.n_prefill_tokens);
    metric("mnemos_decode_tokens_total", "counter", "generated tokens fed back", es.n_decode_tokens);
    metric("mnemos_queue_depth", "gauge", "requests waiting for admission", es.n_waiting);
    metric("mnemos_running_sequences", "gauge", "sequences running", es.n_running);
    metric("mnemos_requests_in_flight", "gauge", "requests submitted and not finished", st.runner->n_in_flight());
    metric("mnemos_kv_pages_total", "gauge", "pages in the KV pool", kv.n_pages);
    metric("mnemos_kv_pages_resident", "gauge", "pages in use", kv.n_pages - kv.n_free);
    metric("mnemos_kv_pages_cached", "gauge", "pages in the prefix index", kv.n_cached);
    metric("mnemos_kv_hits_resident_tokens_total", "counter", "prompt tokens reused from resident pages",
           kv.hits_resident);
    metric("mnemos_kv_hits_store_tokens_total", "counter", "prompt tokens reused from the block store", kv.hits_store);
    metric("mnemos_kv_miss_tokens_total", "counter", "prompt tokens not found in the cache", kv.misses);
    metric("mnemos_kv_evictions_total", "counter", "cached pages evicted", kv.evictions);
    metric("mnemos_kv_preemptions_total", "counter",
           "sequences swapped out to host memory because the running ones outgrew the KV pool", es.n_preemptions);
    metric("mnemos_kv_swapped_bytes", "gauge", "host memory held by preempted sequences waiting to resume",
           es.swapped_bytes);
    metric("mnemos_sessions_resident", "gauge", "sessions in memory", static_cast<int64_t>(st.sessions->n_resident()));
    if (st.opt.cluster_metrics) o += st.opt.cluster_metrics();
    return o;
}

}  // namespace mnemos::agent::server_detail
