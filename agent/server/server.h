#pragma once
// The HTTP server (Boost.Beast on an Asio io_context run by a small thread
// pool): OpenAI-compatible chat completions, the native sessions API, metrics.
// Beast stays inside agent/server/src/; this header has no Boost types. The parts (connection, router,
// http_reply, auth, rate_limiter, turn_queue, engine_bridge, one file per API) live in
// mnemos::agent::server_detail; rate_limiter.h, turn_queue.h, router.h and http_errors.h are public for tests.
//
// Endpoints
//   GET    /healthz, /health             {"status":"ok"} (no key needed)
//   GET    /metrics                      Prometheus text (admin keys, or keys with "metrics": true)
//   GET    /v1/models                    the loaded model
//   GET    /v1/models/{id}               the model (its id, or "mnemos"); another id: 404 model_not_found
//   POST   /v1/embeddings                501 not_implemented
//   POST   /v1/chat/completions          OpenAI-compatible; "stream": true -> SSE (usage in a last chunk
//                                        with "choices": [] when stream_options.include_usage); without
//                                        "seed" a random one, reported as "mnemos": {"seed"}; optional
//                                        "session_id" (created on first use, with the request's
//                                        "character" if any): a resent history is matched against the
//                                        session's log and only its new tail appended (409
//                                        session_history_mismatch naming the first message that differs)
//   POST   /v1/sessions                  {"id"?, "character"?: {name, persona | system_prompt,
//                                        public_knowledge, private_knowledge, secrets, goals,
//                                        shared_prefix}} -> 201 {"id", ...}
//   GET    /v1/sessions/{id}             metadata (private character fields only with read access)
//   DELETE /v1/sessions/{id}
//   POST   /v1/sessions/{id}/messages    {"content", "stream"?, sampling...}: one durable turn
//   GET    /v1/sessions/{id}/events      the event log (read access)
//   PUT    /v1/prefixes/{id}             {"text"}: a shared prefix (e.g. a game's rules) that characters
//                                        name in character.shared_prefix; durable with a store; admin or
//                                        "prefixes": "write" keys; 201 new / 200 replaced (a new version:
//                                        existing sessions keep theirs) {"id", "bytes", "n_tokens"}
//   GET    /v1/prefixes[/{id}]           the list ({"data": [{"id", "bytes"}]}) or one ({"id", "text"});
//                                        admin or "prefixes" (read or write) keys
//   GET    /                             the spectator page (HTML; no key needed)
//   GET    /v1/ws                        WebSocket (key: Authorization header or "?key="). Client frames:
//                                        {"type": "message", "session_id", "content", "role"? ("user"; others
//                                        need an owner: README "Threat model"), "max_tokens"?, sampling...}
//                                        -> {"type": "token", "session_id", "text"}..., then {"type": "done",
//                                        "session_id", "finish_reason", "usage"}; {"type": "subscribe", "topic":
//                                        "events"} -> {"type": "subscribed", "sessions": [{"id", "character"?}]},
//                                        then {"type": "event", "session_id", "seq", "event"} for every durable
//                                        event and {"type": "token", ...} for every streamed token of the
//                                        sessions the key may read (the server's own turns, and generations
//                                        run on the same session_manager outside it that call
//                                        notify_token, e.g. mnemos play --serve's turns; a turn's tokens come
//                                        before its message event). {"type": "player", "name", "content"}: the
//                                        line of an interactive player of the game being played (mnemos play
//                                        --serve; server_options::on_player) -> {"type": "player_ack", "name"};
//                                        only keys that may create sessions (or admin), or a key whose name is
//                                        the player's name, may speak as a player (open access: anyone).
//                                        Bad frames get {"type": "error", "message"}.
// Concurrency: each session is an actor. Turns of one session (POST .../messages, chat completions with
// "session_id", WebSocket "message" frames, tool-agent loops; from any connections) run one at a time, in
// arrival order: a turn that finds its session running waits asynchronously (no io thread blocks) until the
// earlier turns have ended and written their replies. The wait is bounded: at most
// server_options::max_waiting_turns waiting turns per session and turn_wait_timeout_ms each; beyond either,
// 409 {"error": {"code": "session_busy", "message": "session '...' is busy: ..."}} (a WebSocket turn gets
// an error frame). A waiting turn is dropped when its client disconnects, and answers 503 when the server
// stops. Turns run on the session_manager outside the server (mnemos play) are not queued: a server turn
// that meets one still gets session_manager's "busy" refusal. Different sessions run concurrently (batched).
// Errors are 4xx/5xx in OpenAI's shape, {"error": {"message", "type", "param", "code"}} with a string code
// (agent/server/http_errors.h); the server keeps serving. A request refused before its body was read (413,
// 431) is answered whole, then the connection is closed after its input is drained (bounded).
// Rate limits (server_options::requests_per_minute, api_key::requests_per_minute):
// 429 {"error": {"type": "rate_limit_error"}} with a Retry-After header (seconds).
//
// Access: with no keys configured every request is allowed (open access; the
// server then refuses to bind anything but a loopback address). With keys,
// requests carry "Authorization: Bearer KEY" (or "X-API-Key: KEY").
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/runtime.h"
#include "engine/status.h"

namespace mnemos::agent {

// What a key may do with shared prefixes (PUT/GET /v1/prefixes, character.shared_prefix): nothing, read them
// (list, get, name one in a character), or also write them. Not implied by create; admin implies write.
enum class prefix_grant { none, read, write };

// One API key and what it may reach. Session patterns are exact ids, "*", or a
// prefix followed by "*" ("npc-*"). README "Threat model" has what each grant allows.
struct api_key {
    std::string key;                             // the secret; never logged; unique
    std::string name;                            // its identity: logs and session ownership; required, unique
    bool admin = false;                          // everything
    bool create = false;                         // may create sessions (and then owns them)
    std::vector<std::string> sessions;           // may talk to (post messages, read metadata without private fields)
    std::vector<std::string> characters;         // may talk to sessions of these characters (by name)
    std::vector<std::string> read;               // may read events and private fields of these sessions
    int32_t requests_per_minute = -1;            // token bucket (bursts up to this many); -1: the default; 0: unlimited
    prefix_grant prefixes = prefix_grant::none;  // shared prefixes (not implied by create)
    bool metrics = false;                        // may read /metrics (admin keys always)
    std::string secret_sha256;  // a key from the cluster (server_options::cluster_keys): hex SHA-256 of the secret
};

struct auth_config {
    std::vector<api_key> keys;         // empty: open access (loopback only)
    int32_t requests_per_minute = -1;  // default for keys without their own; -1: server_options'
};

// Parses {"requests_per_minute"?, "keys": [{"key", "name", "admin", "create", "sessions", "characters", "read",
// "prefixes": "none"|"read"|"write", "metrics", "requests_per_minute"}]}. Every key needs a "name", unique
// among the keys (sessions are owned by it, so the order of the keys changes nothing); secrets are unique too.
// Errors: invalid_argument naming the bad field; io_error when the file cannot be read.
result<auth_config> parse_auth_config(const std::string& json_text);
// Every key has a name and a secret, none shared with another key (server::start checks keys built in code).
status check_auth_keys(const std::vector<api_key>& keys);
result<auth_config> load_auth_config(const std::string& path);

// Request limits (README "Limits"), checked before the request is walked; breaking one gets a 4xx naming it.
// Also tools::k_max_json_depth (JSON nesting of bodies, WebSocket frames, config and scenario files) and
// k_max_tools / k_max_schema_bytes / k_max_tool_description_bytes (agent/agent_loop.h).
inline constexpr size_t k_max_messages = 1024;            // `messages` of one request
inline constexpr size_t k_max_header_bytes = 64 * 1024;   // request line and header fields; more gets 431
inline constexpr size_t k_max_field_bytes = 16 * 1024;    // one header or chunked-trailer field; more gets 431
inline constexpr size_t k_max_trailer_bytes = 16 * 1024;  // all trailer fields of a chunked body; more gets 431

// The access log's lines (server_options::log_requests): plain text, or one JSON object per line.
enum class access_log_format { text, json };

struct server_options {
    // Address to bind.
    // Default: "127.0.0.1"
    std::string host = "127.0.0.1";
    // TCP port; 0 picks an ephemeral port (see server::port()).
    // Default: 8080
    uint16_t port = 8080;
    // Threads running the io_context.
    // Default: 2
    int n_io_threads = 2;
    // Largest request body accepted; larger ones get 413.
    // Default: 1 MiB
    size_t max_body_bytes = 1 << 20;
    // max_tokens when a request gives none (capped by the context left).
    // Default: 256
    int32_t default_max_tokens = 256;
    // Keys; empty = open access, allowed only on a loopback host.
    // Default: none
    auth_config auth;
    // Requests per minute per API key (per client address under open access), as a token
    // bucket that holds up to this many; exceeding it gets 429 with Retry-After. A key's own
    // requests_per_minute, else the config file's, else this; 0: unlimited. /healthz and the
    // spectator page are not counted; a WebSocket counts at its upgrade and for each "message"
    // and "player" frame (over the limit: an error frame).
    // Default: 0
    int32_t requests_per_minute = 0;
    // Turns that may wait for an earlier turn of the same session (per session); one more gets 409.
    // 0: a turn on a running session is refused at once.
    // Default: 16
    int32_t max_waiting_turns = 16;
    // How long a turn waits for its session before it gets 409; 0: no limit.
    // Default: 120000 (2 min)
    int32_t turn_wait_timeout_ms = 120000;
    // Install a SIGINT/SIGTERM handler that stops the server (the CLI; not tests).
    // Default: false
    bool handle_signals = false;
    // Log one line per request to stderr: method, path, status, duration, client address, the API key's name
    // (never the key), and the prompt, cached and generated tokens when the request ran a generation; never
    // bodies. Format: log_format (agent/server/src/access_log.h shows both).
    // Default: false, text
    bool log_requests = false;
    access_log_format log_format = access_log_format::text;
    // Receives the line of an interactive scenario player from a WebSocket {"type": "player", "name",
    // "content"} frame (mnemos play --serve: the game's player_inbox, agent/player_inbox.h), on an io
    // thread; must not block. Returns "" when the line was taken, else the reason it was not (sent back as
    // an error frame), e.g. an unknown player. The server has already checked access, that content is
    // non-empty UTF-8 of at most max_player_line_bytes, and the rate limit. Default: none (player frames
    // get "no game is being played here").
    std::function<std::string(const std::string& name, const std::string& content)> on_player;
    // Longest player line accepted, in bytes.
    // Default: 4096
    size_t max_player_line_bytes = 4096;
    // Origins allowed to call the server from a browser (CORS): "*" (any) or "scheme://host[:port]" each
    // (check_cors_origin). Their requests get Access-Control-Allow-Origin, their preflights 204.
    // Default: none (CORS off: no Access-Control headers, OPTIONS is not answered)
    std::vector<std::string> cors_origins;
    // Cluster mode (agent/cluster/cluster_node.h, README "Cluster mode"): asked before a request for
    // /v1/sessions/{id}[/...] is served, on an io thread. "" serves it here (this node owns the session now);
    // a URL is the owning node's advertised base URL: the request gets 307 Temporary Redirect to that URL
    // plus the request's path and query (clients re-send the same method and body). An error gets 503.
    // Default: none (single node: every session is served here)
    std::function<result<std::string>(const std::string& session_id)> session_owner;
    // Cluster mode: the JSON body of GET /v1/cluster (the nodes, their load, the sessions this node owns).
    // Default: none (GET /v1/cluster answers 404: not in cluster mode)
    std::function<std::string()> cluster_status;
    // Cluster mode: Prometheus text appended to GET /metrics (this node's cluster gauges and counters, labelled
    // node="ID": sessions owned, leases, redirects, appends, the shared block tier).
    // Default: none
    std::function<std::string()> cluster_metrics;
    // Cluster mode: keys other nodes publish (agent/server/key_grants.h): an immutable snapshot, asked on an io
    // thread per authentication. Only their secret_sha256 is set (never the secret). Checked after auth.keys,
    // and only when auth.keys is non-empty (an open-access node stays open).
    // Default: none
    std::function<std::shared_ptr<const std::vector<api_key>>()> cluster_keys;
};

// Whether origin may be a CORS origin: "*" or "http(s)://host[:port]" without a path.
// Errors: invalid_argument naming the origin and what is wrong.
status check_cors_origin(std::string_view origin);

// The spectator page served at GET / (agent/server/spectator.html, embedded at build time by
// agent/server/embed_file.cmake): plain HTML and JavaScript, no external resources. It connects to /v1/ws,
// subscribes to "events", and shows every session the key may read (character, turns as they stream,
// events) plus memory and cache statistics from GET /metrics, polled every 2 s. A key is taken from the
// page's own "?key=" parameter.
const std::string& spectator_page();

class server {
  public:
    // Binds, listens and starts the io threads. runner and sessions are not
    // owned and must outlive the server. Errors: invalid_argument (open access
    // on a non-loopback host, bad host), io_error (bind/listen failed).
    static result<std::unique_ptr<server>> start(const server_options& options, engine_runner& runner,
                                                 session_manager& sessions);
    // Stops (as stop()) and joins.
    ~server();

    // The bound port (the ephemeral one when options.port was 0).
    uint16_t port() const;
    // Graceful: stops accepting, answers turns waiting for their session 503,
    // cancels turns in flight (their streams end
    // with finish_reason "cancelled"), waits up to 2 s for them, then stops
    // the io_context and joins its threads. Idempotent; thread-safe.
    void stop();
    // Blocks until stop() (or a signal, with handle_signals) has stopped the server.
    void wait();

    struct impl;

  private:
    explicit server(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

}  // namespace mnemos::agent
