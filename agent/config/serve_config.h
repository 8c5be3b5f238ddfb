#pragma once
// The settings of `mnemos serve`: a JSON config file plus command-line flags,
// flags overriding the file wherever they appear on the command line.
//
// The config file (--config FILE):
//   {
//     "keys": [{"key", "name", "admin", "create", "sessions", "characters", "read", "prefixes",
//               "metrics", "requests_per_minute"}, ...],  API keys (agent/server.h, parse_auth_config);
//                                                    "name" is required and unique
//     "requests_per_minute": N,                      default for keys without their own
//     "server": {                                    the flags' settings, all optional:
//       "model": "FILE", "store": "DIR", "host": "ADDR", "port": N, "ctx": N, "threads": N,
//       "io_threads": N, "max_body_bytes": N, "default_max_tokens": N,
//       "requests_per_minute": N, "log": true|false, "log_format": "text"|"json",
//       "cors_origins": ["*" | "http(s)://host[:port]", ...]    (--cors-origin, repeatable; flags replace
//                                                              the file's list)
//       "cluster": "nats://...,...", "node_id", "advertise", "lease_ttl_ms", "cluster_replicas"  (cluster mode)
//     }
//   }
// Paths in "server" are used as given (relative ones from the working directory,
// as on the command line). An unknown field or a wrong type is an error naming
// the field ("server.port must be an integer from 0 to 65535"). A file without
// "keys" holds settings only (open access, loopback only); "keys": [] is an error.
#include <cstdint>
#include <string>
#include <vector>

#include "agent/server/server.h"
#include "engine/attention.h"
#include "engine/status.h"

namespace mnemos::agent {

struct serve_settings {
    // GGUF model ("" -> $MNEMOS_MODEL, else ../shared/models; resolved by the CLI).
    // Default: ""
    std::string model;
    // RocksDB directory ("" = sessions in memory).
    // Default: ""
    std::string store;
    // The --config file ("" = none: open access).
    // Default: ""
    std::string config_path;
    // Engine CPU threads (0 = all) and context length (0 = the model's, at most 32768).
    // Default: 0, 0
    int32_t n_threads = 0;
    int32_t n_ctx = 0;
    // Attention beyond n_ctx (engine/attention.h): "server": {"attention": "auto", "sink_tokens": 64,
    // "window_tokens": 1024, "select_pages": 32}, flags --attention, --sink-tokens, --window-tokens, --select-pages.
    // Default: auto, 64, 1024, 32
    engine::attention_options attention;
    // KV pool bytes ("kv_mb" / --kv-mb; 0 = the engine's default).
    // Default: 0
    size_t kv_bytes = 0;
    // Cluster mode (README "Cluster mode"): "server": {"cluster": "nats://h1:4222,nats://h2:4222", "node_id",
    // "advertise": "http://host:port", "lease_ttl_ms", "cluster_replicas"}, flags --cluster, --node-id,
    // --advertise, --lease-ttl-ms, --cluster-replicas. cluster "" = single node.
    // Default: "", "" (host name and pid), "" (the bound address), 10000, 3
    std::string cluster;
    std::string node_id;
    std::string advertise;
    int64_t lease_ttl_ms = 10000;
    int32_t cluster_replicas = 3;
    // Everything the server takes; auth comes from the config file.
    server_options server;
    // -h / --help was given (nothing else is checked then).
    // Default: false
    bool help = false;
};

// Applies a config file's JSON to s: keys and the top-level requests_per_minute
// go to s.server.auth, the "server" object's fields to their settings.
// Errors: invalid_argument naming the field (unknown fields included).
status apply_serve_config(const std::string& json_text, serve_settings& s);

// Parses serve's arguments (argv[1..], without the command name): reads the
// --config file first, then applies the flags over it. Errors: invalid_argument naming the flag or the config
// field, io_error when the config file cannot be read, a config without keys.
result<serve_settings> parse_serve_args(const std::vector<std::string>& args);

}  // namespace mnemos::agent
