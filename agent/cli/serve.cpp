// mnemos serve: the HTTP server (agent/server.h) over one model and a session store.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "agent/cli/commands.h"
#include "agent/runtime.h"
#include "agent/server.h"
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
        "is accepted. With --config FILE (JSON), requests need \"Authorization: Bearer KEY\":\n"
        "  {\"keys\": [{\"key\": \"sk-gm\", \"name\": \"gm\", \"admin\": true},\n"
        "            {\"key\": \"sk-p1\", \"name\": \"player1\", \"sessions\": [\"npc-*\"], \"read\": []}]}\n"
        "  admin: everything; create: may create sessions (and owns them); sessions / characters:\n"
        "  may talk to these sessions (ids, \"*\", \"prefix*\") or characters (names); read: may read\n"
        "  their events and private character fields. Rate limits: \"requests_per_minute\" per key,\n"
        "  or at the top level as the default for keys without one (0 = unlimited); over it: 429\n"
        "  with Retry-After.\n"
        "\n"
        "options:\n"
        "  --model FILE        GGUF model (default: $MNEMOS_MODEL, else ../shared/models)\n"
        "  --store DIR         RocksDB directory for sessions and KV blocks (default: in memory, lost on exit)\n"
        "  --port N            TCP port (default 8080; 0 = ephemeral, printed on stderr)\n"
        "  --host ADDR         address to bind (default 127.0.0.1)\n"
        "  --config FILE       API keys (JSON, see above)\n"
        "  --threads N         engine CPU threads (default: all)\n"
        "  --io-threads N      HTTP threads (default 2)\n"
        "  --ctx N             context length (default: the model's, at most 32768)\n"
        "  --max-body BYTES    largest request body (default 1048576)\n"
        "  --max-tokens N      default max_tokens (default 256)\n"
        "  --log               log one line per request (never bodies or keys)\n"
        "  --requests-per-minute N\n"
        "                      rate limit per key (per client address without --config) when the\n"
        "                      config gives none (default 0 = unlimited)\n"
        "  -h, --help          show this help\n");
}

}  // namespace

int cmd_serve(int argc, char** argv) {
    std::string model_path, store_dir, config_path;
    agent::server_options so;
    so.handle_signals = true;
    engine::engine_options eo;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "mnemos serve: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        auto integer = [&]() -> long long {
            const std::string v = value();
            char* end = nullptr;
            const long long n = std::strtoll(v.c_str(), &end, 10);
            if (v.empty() || *end != 0 || n < 0) {
                std::fprintf(stderr, "mnemos serve: %s expects a non-negative integer, got '%s'\n", a.c_str(),
                             v.c_str());
                std::exit(2);
            }
            return n;
        };
        if (a == "-h" || a == "--help") {
            serve_usage(stdout);
            return 0;
        } else if (a == "--model" || a == "-m")
            model_path = value();
        else if (a == "--store")
            store_dir = value();
        else if (a == "--config")
            config_path = value();
        else if (a == "--host")
            so.host = value();
        else if (a == "--port") {
            const long long p = integer();
            if (p > 65535) {
                std::fprintf(stderr, "mnemos serve: --port must be <= 65535\n");
                return 2;
            }
            so.port = static_cast<uint16_t>(p);
        } else if (a == "--threads" || a == "-t")
            eo.n_threads = static_cast<int32_t>(integer());
        else if (a == "--io-threads")
            so.n_io_threads = static_cast<int>(integer());
        else if (a == "--ctx")
            eo.n_ctx = static_cast<int32_t>(integer());
        else if (a == "--max-body")
            so.max_body_bytes = static_cast<size_t>(integer());
        else if (a == "--max-tokens")
            so.default_max_tokens = static_cast<int32_t>(integer());
        else if (a == "--log")
            so.log_requests = true;
        else if (a == "--requests-per-minute")
            so.requests_per_minute = static_cast<int32_t>(integer());
        else {
            std::fprintf(stderr, "mnemos serve: unknown option '%s' (see --help)\n", a.c_str());
            return 2;
        }
    }
    if (!config_path.empty()) {
        auto cfg = agent::load_auth_config(config_path);
        if (!cfg) {
            std::fprintf(stderr, "mnemos serve: --config: %s\n", cfg.error().to_string().c_str());
            return 2;
        }
        so.auth = std::move(cfg.value());
        if (so.auth.keys.empty()) {
            std::fprintf(stderr, "mnemos serve: --config lists no keys\n");
            return 2;
        }
    }
    model_path = resolve_model_path(model_path);
    if (model_path.empty()) {
        std::fprintf(stderr, "mnemos serve: no model. Pass --model FILE or set MNEMOS_MODEL.\n");
        return 2;
    }
    auto loaded = engine::model::load(model_path);
    if (!loaded) {
        std::fprintf(stderr, "mnemos serve: cannot load model: %s\n", loaded.error().to_string().c_str());
        return 1;
    }
    std::shared_ptr<const engine::model> m(std::move(loaded.value()));

    std::unique_ptr<memory::store> db;
    std::unique_ptr<agent::session_store_i> sessions_store;
    if (!store_dir.empty()) {
        memory::store_options mo;
        mo.path = store_dir;
        auto opened = memory::store::open(mo);
        if (!opened) {
            std::fprintf(stderr, "mnemos serve: --store: %s\n", opened.error().to_string().c_str());
            return 1;
        }
        db = std::move(opened.value());
    }
    {
        auto runner = agent::engine_runner::start(m, eo);
        if (!runner) {
            std::fprintf(stderr, "mnemos serve: %s\n", runner.error().to_string().c_str());
            return 1;
        }
        if (db) {
            memory::store* raw = db.get();
            runner.value()->run_on_engine_thread([raw](engine::engine& e) { e.kv().set_store(&raw->blocks()); });
            sessions_store = agent::make_durable_session_store(*db, m->fingerprint(), 16);
        } else {
            sessions_store = agent::make_memory_session_store();
        }
        agent::session_manager sessions(*m, *sessions_store);
        auto srv = agent::server::start(so, *runner.value(), sessions);
        if (!srv) {
            std::fprintf(stderr, "mnemos serve: %s\n", srv.error().to_string().c_str());
            return 1;
        }
        std::fprintf(stderr, "mnemos serve: %s on http://%s:%u (%s, %s)\n", m->hp().name.c_str(), so.host.c_str(),
                     static_cast<unsigned>(srv.value()->port()),
                     store_dir.empty() ? "sessions in memory" : store_dir.c_str(),
                     so.auth.keys.empty() ? "open access" : "API keys required");
        std::fflush(stderr);
        srv.value()->wait();
        srv.value().reset();
        // The runner (engine thread) stops here, before the store closes.
    }
    if (db) db->flush();
    std::fprintf(stderr, "mnemos serve: stopped\n");
    return 0;
}

}  // namespace mnemos::cli
