#include "cluster/src/fenced_publish.h"

#include <chrono>
#include <thread>

namespace mnemos::cluster::detail {

namespace {

constexpr const char* k_expected_subject_header = "Nats-Expected-Last-Subject-Sequence";
constexpr const char* k_expected_stream_header = "Nats-Expected-Last-Sequence";
constexpr const char* k_msg_id_header = "Nats-Msg-Id";

natsStatus stream_last_seq(client::impl& c, const std::string& stream, uint64_t& seq, jsErrCode& jerr) {
    jsStreamInfo* si = nullptr;
    natsStatus s = js_GetStreamInfo(&si, c.js, stream.c_str(), nullptr, &jerr);
    if (s != NATS_OK) return s;
    seq = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return NATS_OK;
}

natsStatus publish_once(client::impl& c, const std::string& subject, std::string_view data, uint64_t stream_seq,
                        uint64_t subject_seq, const std::string& msg_id, uint64_t& stored, jsErrCode& jerr) {
    natsMsg* msg = nullptr;
    const std::string stream_text = std::to_string(stream_seq), subject_text = std::to_string(subject_seq);
    natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, data.data(), int(data.size()));
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, k_expected_stream_header, stream_text.c_str());
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, k_expected_subject_header, subject_text.c_str());
    if (s == NATS_OK && !msg_id.empty()) s = natsMsgHeader_Set(msg, k_msg_id_header, msg_id.c_str());
    jsPubAck* ack = nullptr;
    if (s == NATS_OK) s = js_PublishMsg(&ack, c.js, msg, nullptr, &jerr);
    natsMsg_Destroy(msg);
    if (s == NATS_OK) {
        stored = ack->Sequence;
        jsPubAck_Destroy(ack);
    }
    return s;
}

}  // namespace

natsStatus last_on_subject(client::impl& c, const std::string& stream, const std::string& subject, uint64_t& seq,
                           std::string& msg_id, jsErrCode& jerr) {
    natsMsg* msg = nullptr;
    natsStatus s = js_GetLastMsg(&msg, c.js, stream.c_str(), subject.c_str(), nullptr, &jerr);
    seq = 0;
    msg_id.clear();
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
        jerr = jsErrCode(0);
        return NATS_OK;
    }
    if (s != NATS_OK) return s;
    seq = natsMsg_GetSequence(msg);
    const char* id = nullptr;
    if (natsMsgHeader_Get(msg, k_msg_id_header, &id) == NATS_OK && id) msg_id = id;
    natsMsg_Destroy(msg);
    return NATS_OK;
}

fenced_result fenced_publish(client::impl& c, const std::string& stream, const std::string& subject,
                             std::string_view data, uint64_t expected_subject_seq, const std::string& msg_id,
                             std::atomic<uint64_t>& stream_last) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(c.options.retry_ms);
    fenced_result r;
    auto give_up = [&](natsStatus s, jsErrCode e) {
        r.status = s;
        r.jerr = e;
        return !transient(s, e) || std::chrono::steady_clock::now() >= deadline;
    };
    for (;;) {
        // stream_last is a sequence every message up to which was applied (an acknowledgement, or the
        // stream's state), so the subject's last message read now is its last one as of that sequence.
        const uint64_t known = stream_last.load();
        uint64_t subject_last = 0;
        std::string last_id;
        jsErrCode e{};
        natsStatus s = last_on_subject(c, stream, subject, subject_last, last_id, e);
        if (s != NATS_OK) {
            if (give_up(s, e)) return r;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        if (!msg_id.empty() && last_id == msg_id) {  // an earlier try was stored, its acknowledgement lost
            r = fenced_result{NATS_OK, {}, subject_last, false};
            return r;
        }
        if (subject_last != expected_subject_seq) {
            r = fenced_result{NATS_ERR, JSStreamWrongLastSequenceErr, 0, true, subject_last};
            return r;
        }
        // Admitted only if nothing at all was stored after `known`: nothing on this subject either.
        uint64_t stored = 0;
        e = jsErrCode(0);
        s = publish_once(c, subject, data, known, expected_subject_seq, msg_id, stored, e);
        if (s == NATS_OK) {
            uint64_t seen = stream_last.load();
            while (seen < stored && !stream_last.compare_exchange_weak(seen, stored)) {
            }
            r = fenced_result{NATS_OK, {}, stored, false};
            return r;
        }
        if (e == JSStreamWrongLastSequenceErr) {  // the stream moved on: learn its last sequence, check again
            uint64_t now = 0;
            jsErrCode e2{};
            natsStatus s2 = stream_last_seq(c, stream, now, e2);
            if (s2 == NATS_OK)
                stream_last.store(now);
            else if (give_up(s2, e2))
                return r;
            continue;
        }
        if (give_up(s, e)) return r;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

}  // namespace mnemos::cluster::detail
