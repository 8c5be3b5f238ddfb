#pragma once
// A publish that JetStream stores only when the subject's last message is
// the expected one, made safe on nats-server 2.9.x clusters.
//
// Nats-Expected-Last-Subject-Sequence is not serializable on a clustered
// stream before nats-server 2.9.21 (nats-io/nats-server#4320; Debian ships
// 2.9.10): two concurrent publishes with the same expected subject sequence
// can both be stored (this suite's race tests saw it, for 0 and for later
// sequences). The stream-wide Nats-Expected-Last-Sequence is checked by the
// stream leader against its count of proposals in flight, so it is
// serializable. A fenced publish therefore (1) takes a stream sequence S up
// to which every message is applied (this client's last acknowledgement, or
// the stream's state), (2) reads the subject's last message from the leader,
// which is then its last one as of S, and is fenced unless it is the
// expected one, (3) publishes with Expected-Last-Sequence S: admitted only
// if nothing at all was stored after S. When the stream moved on (another
// subject was written), it learns the new S and starts over. The cost: three
// round trips per publish, and writers of one stream admitted one at a time.
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "cluster/src/nats_internal.h"

namespace mnemos::cluster::detail {

struct fenced_result {
    natsStatus status = NATS_OK;  // NATS_OK: stored
    jsErrCode jerr{};             // with status
    uint64_t seq = 0;             // the stored message's stream sequence
    bool fenced = false;          // the subject's last message was not the expected one: nothing stored
    uint64_t subject_last = 0;    // when fenced: the subject's last stream sequence, as read
};

// Publishes data on subject of stream when the subject's last stream
// sequence is expected_subject_seq (0: no message). msg_id dedupes retries
// (empty: none). stream_last caches the stream's last sequence. Retries
// transient failures for the client's retry_ms.
fenced_result fenced_publish(client::impl& c, const std::string& stream, const std::string& subject,
                             std::string_view data, uint64_t expected_subject_seq, const std::string& msg_id,
                             std::atomic<uint64_t>& stream_last);

// The stream sequence of the last message on subject (0 when none) and its Nats-Msg-Id header.
natsStatus last_on_subject(client::impl& c, const std::string& stream, const std::string& subject, uint64_t& seq,
                           std::string& msg_id, jsErrCode& jerr);

}  // namespace mnemos::cluster::detail
