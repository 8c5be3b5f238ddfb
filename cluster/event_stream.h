#pragma once
// Every session's event log in one replicated JetStream stream, one subject
// per session (<subject_prefix>.<hex of the session id>), file storage.
//
// Appends are fenced: each carries the stream sequence of the last message
// the writer knows on the session's subject (JetStream's
// Nats-Expected-Last-Subject-Sequence), so two writers can never interleave:
// of two appends made with the same expected sequence exactly one is stored;
// the other fails with errc::busy ("fenced"); see src/fenced_publish.h for
// how this holds on nats-server 2.9 clusters. An append is acknowledged by
// the stream's quorum (replicas) before append() returns. A retried append
// (a timeout while a server died) carries the same message id, so JetStream
// stores it at most once.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/nats_client.h"
#include "engine/status.h"

namespace mnemos::cluster {

struct stream_options {
    // The stream's name.
    // Default: "MNEMOS_EVENTS"
    std::string name = "MNEMOS_EVENTS";
    // Subjects are <subject_prefix>.<hex session id>.
    // Default: "mnemos.ev"
    std::string subject_prefix = "mnemos.ev";
    // Copies of every message (1, 3 or 5; at most the servers in the cluster).
    // Default: 3
    int replicas = 3;
};

// One event of a session, as stored.
struct stream_event {
    uint64_t stream_seq = 0;  // the stream's sequence number (the fence of the next append)
    std::string data;         // the event as appended
};

class event_stream {
  public:
    // Creates the stream, or opens it when it exists (its replicas are kept
    // as they are). Errors: invalid_argument (bad name or prefix),
    // unavailable, io_error (refused by JetStream, with its message).
    static result<std::unique_ptr<event_stream>> open(client& c, const stream_options& options);

    // Appends data to the session's subject when the subject's last stream
    // sequence is expected_last (0: the session has no event yet), and
    // returns the new message's stream sequence once the quorum stored it.
    // Errors: invalid_argument (bad session id, data larger than the
    // payload limit), busy (fenced: another writer appended first; the
    // message names the session), unavailable (no quorum within retry_ms).
    result<uint64_t> append(std::string_view session, std::string_view data, uint64_t expected_last);
    // The stream sequence of the session's last event; 0 when it has none.
    result<uint64_t> last_seq(std::string_view session);
    // Every event of the session in append order (empty when none).
    // Errors: invalid_argument, unavailable.
    result<std::vector<stream_event>> read(std::string_view session);
    // Removes every event of the session. Errors: invalid_argument, unavailable.
    status purge(std::string_view session);

    const stream_options& options() const { return options_; }
    std::string subject(std::string_view session) const;
    ~event_stream();

  private:
    event_stream(client& c, stream_options options) : client_(c), options_(std::move(options)) {}
    client& client_;                        // the connection (outlives this)
    stream_options options_;                // as opened
    std::atomic<uint64_t> stream_last_{0};  // the stream's last sequence as last seen (fenced_publish.h)
};

}  // namespace mnemos::cluster
