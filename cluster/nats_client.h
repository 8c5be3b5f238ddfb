#pragma once
// A connection to a NATS cluster with JetStream (the NATS C client, libnats),
// shared by the event stream, the key-value buckets and the block tier of
// cluster mode (../shared/DESIGN.md, "Scaling past one machine").
//
// The client knows every server URL given, reconnects forever (a killed
// nats-server is replaced by another of the list), and each operation of the
// classes built on it retries across a reconnect or a JetStream leader
// election for at most retry_ms before it reports errc::unavailable.
//
// Thread safety: every method may be called from any thread (libnats
// connections are thread-safe).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace mnemos::cluster {

struct client_options {
    // nats://host:port URLs of the cluster's servers (at least one).
    // Default: {} (required)
    std::vector<std::string> urls;
    // The connection's name, as the servers show it (monitoring).
    // Default: "mnemos"
    std::string name = "mnemos";
    // Connect timeout, and the wait for one JetStream API reply or publish acknowledgement.
    // Default: 2000 ms
    int64_t timeout_ms = 2000;
    // How long an operation keeps retrying while no server or no JetStream
    // leader answers (a killed server, an election) before errc::unavailable.
    // Default: 15000 ms
    int64_t retry_ms = 15000;
    // How long connect() waits for JetStream to answer (a cluster that is starting elects its meta leader).
    // Default: 60000 ms
    int64_t connect_wait_ms = 60000;
};

// Splits "nats://h1:4222,nats://h2:4222" into URLs. Errors: invalid_argument
// (empty list, empty entry, or an entry not starting with nats:// or tls://).
result<std::vector<std::string>> parse_url_list(std::string_view comma_separated);

class client {
  public:
    // Connects to one of the servers (trying each). Errors: invalid_argument
    // (no URL), unavailable (no server answered, or it has no JetStream).
    static result<std::unique_ptr<client>> connect(const client_options& options);
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    const client_options& options() const;
    // The largest message the servers accept (their max_payload).
    int64_t max_payload() const;
    // Whether the connection is up now (false while reconnecting).
    bool connected() const;
    // The URL of the server the connection uses now ("" while reconnecting).
    std::string connected_url() const;

    struct impl;  // libnats handles (keeps nats.h out of this header)
    impl& internals() { return *impl_; }

  private:
    explicit client(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;  // connection and JetStream context
};

}  // namespace mnemos::cluster
