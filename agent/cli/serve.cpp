// mnemos serve: the HTTP server (agent/server.h) over one model and a session store.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "agent/cli/commands.h"
#include "agent/cli/engine_flags.h"
#include "agent/cli/serve_cluster.h"
#include "agent/config/serve_config.h"
#include "agent/core/runtime.h"
#include "agent/server/server.h"
#include "memory/store.h"

namespace mnemos::cli {

namespace {

void serve_usage(FILE* out) {
    std::fprintf(
        out,
        "usage: mnemos serve [--model FILE] [--store DIR] [--port N] [--host ADDR] [--config FILE] [options]\n"
        "\n"
        "Serves the model over HTTP: OpenAI-compatible POST /v1/chat/completions (stream or not),\n"
        "sessions (POST /v1/sessions, /v1/sessions/{id}/messages, /events), GET /v1/models,\n"
        "GET /healthz, GET /metrics (Prometheus). SIGINT/SIGTERM shut it down gracefully.\n"
        "\n"
        "Without --config every request is allowed (open access), and only a loopback --host\n"
        "is accepted. --config FILE (JSON) holds API keys and/or the server's settings; with\n"
        "keys, requests need \"Authorization: Bearer KEY\":\n"
        "  {\"keys\": [{\"key\": \"sk-gm\", \"name\": \"gm\", \"admin\": true},\n"
        "            {\"key\": \"sk-p1\", \"name\": \"player1\", \"sessions\": [\"npc-*\"], \"read\": []}],\n"
        "   \"server\": {\"model\": \"m.gguf\", \"store\": \"db\", \"host\": \"0.0.0.0\", \"port\": 8080}}\n"
        "  admin: everything; create: may create sessions (and owns them); sessions / characters:\n"
        "  may talk to these sessions (ids, \"*\", \"prefix*\") or characters (names); read: may read\n"
        "  their events and private character fields. Rate limits: \"requests_per_minute\" per key,\n"
        "  or at the top level as the default for keys without one (0 = unlimited); over it: 429\n"
        "  with Retry-After.\n"
        "  \"server\" takes the options below by these names: model, store, host, port, ctx,\n"
        "  threads, io_threads, max_body_bytes, default_max_tokens, requests_per_minute, log,\n"
        "  log_format, attention, sink_tokens, window_tokens, select_pages, kv_mb, cors_origins (log is\n"
        "  true/false, cors_origins an array). Flags override the file wherever they appear. Paths are used as given\n"
        "  (relative to the working directory). An unknown field or a wrong type is an error that\n"
        "  names it. A file without \"keys\" only sets options (open access, loopback only).\n"
        "\n"
        "options:\n"
        "  --model FILE        GGUF model (default: $MNEMOS_MODEL, else ../shared/models)\n"
        "  --store DIR         RocksDB directory for sessions and KV blocks (default: in memory, lost on exit)\n"
        "  --port N            TCP port (default 8080; 0 = ephemeral, printed on stderr)\n"
        "  --host ADDR         address to bind (default 127.0.0.1)\n"
        "  --config FILE       API keys and settings (JSON, see above)\n"
        "  --threads N         engine CPU threads (default: all)\n"
        "  --io-threads N      HTTP threads (default 2)\n"
        "  --ctx N             context length (default: the model's, at most 32768)\n"
        "  --max-body BYTES    largest request body (default 1048576)\n"
        "  --max-tokens N      default max_tokens (default 256)\n"
        "  --log               log one line per request to stderr: method, path, status, duration,\n"
        "                      client, key name, prompt/cached/generated tokens (never bodies or keys)\n"
        "  --log-format F      text (default) or json (one object per line)\n"
        "  --cors-origin ORIGIN\n"
        "                      let browser pages from ORIGIN (http(s)://host[:port], or * for any)\n"
        "                      call the server (CORS); repeatable (default: none, CORS off)\n"
        "  --cluster URLS      cluster mode: nats://h1:4222,nats://h2:4222,... (JetStream; needs --store;\n"
        "                      README \"Cluster mode\"); --node-id ID, --advertise URL (redirect target),\n"
        "                      --lease-ttl-ms N (default 10000), --cluster-replicas N (default 3)\n"
        "  --requests-per-minute N\n"
        "                      rate limit per key (per client address without --config) when the\n"
        "                      config gives none (default 0 = unlimited)\n"
        "  -h, --help          show this help\n\n"
        "limits (fixed; over one: a 4xx naming it): headers 64 KiB, one header or trailer field\n"
        "16 KiB, trailers 16 KiB (431); JSON nested at most 64 levels, 1024 messages and 128 tools\n"
        "per request, a tool's parameters or a json_schema 64 KiB, a tool description 16 KiB (400).\n\n"
        "%s",
        engine_flags_help().c_str());
}

}  // namespace

int cmd_serve(int argc, char** argv) {
    auto parsed = agent::parse_serve_args(std::vector<std::string>(argv + 1, argv + argc));
    if (!parsed) {
        std::fprintf(stderr, "mnemos serve: %s\n", parsed.error().message().c_str());
        return 2;
    }
    if (parsed->help) {
        serve_usage(stdout);
        return 0;
    }
    agent::server_options so = parsed->server;
    so.handle_signals = true;
    engine::engine_options eo;
    eo.n_threads = parsed->n_threads;
    eo.n_ctx = parsed->n_ctx;
    eo.attention = parsed->attention;
    eo.kv_bytes = parsed->kv_bytes;
    std::string model_path = parsed->model, store_dir = parsed->store;
    int rc = 0;
    auto m = load_command_model("serve", model_path, &rc);
    if (!m) return rc;

    agent::runtime_options ro;
    ro.engine = eo;
    ro.store_dir = store_dir;
    auto cluster = open_serve_cluster(*parsed, ro, so);
    if (!cluster) {
        std::fprintf(stderr, "mnemos serve: %s\n", cluster.error().to_string().c_str());
        return 1;
    }
    auto rt = agent::runtime::open(m, ro);
    if (!rt) {
        std::fprintf(stderr, "mnemos serve: %s\n", rt.error().to_string().c_str());
        return 1;
    }
    auto srv = agent::server::start(so, rt.value()->runner(), rt.value()->sessions());
    if (!srv) {
        std::fprintf(stderr, "mnemos serve: %s\n", srv.error().to_string().c_str());
        return 1;
    }
    std::fprintf(stderr, "mnemos serve: %s on http://%s:%u (%s, %s)\n", m->hp().name.c_str(), so.host.c_str(),
                 static_cast<unsigned>(srv.value()->port()),
                 store_dir.empty() ? "sessions in memory" : store_dir.c_str(),
                 so.auth.keys.empty() ? "open access" : "API keys required");
    if (*cluster) {
        const std::string url = "http://" + so.host + ":" + std::to_string(srv.value()->port());
        attach_serve_cluster(**cluster, rt.value()->sessions(), url);
        std::fprintf(stderr, "mnemos serve: cluster node %s on %s\n", parsed->node_id.c_str(), parsed->cluster.c_str());
    }
    std::fflush(stderr);
    srv.value()->wait();
    srv.value().reset();                           // the server stops before the runtime it serves
    if (*cluster) drain_serve_cluster(**cluster);  // hand the sessions over: leases released after the flush
    rt.value().reset();                            // runtime teardown: sessions, engine thread, store (flushed)
    cluster->reset();  // the node outlives the runtime's session store, which uses its stream
    std::fprintf(stderr, "mnemos serve: stopped\n");
    return 0;
}

}  // namespace mnemos::cli
