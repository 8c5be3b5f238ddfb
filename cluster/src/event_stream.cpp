#include "cluster/event_stream.h"

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "cluster/src/fenced_publish.h"
#include "cluster/src/nats_internal.h"
#include "cluster/subject_codec.h"
#include "memory/store.h"

namespace mnemos::cluster {

namespace {

bool valid_name(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!(isalnum((unsigned char)c) || c == '_' || c == '-')) return false;
    return true;
}

bool valid_prefix(std::string_view s) {
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    for (char c : s)
        if (!(isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.')) return false;
    return true;
}

// A message id unique to one append (retries of it reuse it): JetStream stores a message id once.
std::string new_msg_id() {
    static std::atomic<uint64_t> counter{0};
    static const uint64_t process_nonce = std::random_device{}() * 0x9e3779b97f4a7c15ull ^
                                          uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    return std::to_string(process_nonce) + "-" + std::to_string(counter.fetch_add(1));
}

}  // namespace

result<std::unique_ptr<event_stream>> event_stream::open(client& c, const stream_options& options) {
    if (!valid_name(options.name))
        return make_error(errc::invalid_argument, "bad stream name '" + options.name + "' (letters, digits, _ and -)");
    if (!valid_prefix(options.subject_prefix))
        return make_error(errc::invalid_argument, "bad subject prefix '" + options.subject_prefix + "'");
    if (options.replicas < 1 || options.replicas > 5)
        return make_error(errc::invalid_argument, "stream replicas must be 1 to 5");
    std::string wildcard = options.subject_prefix + ".>";
    const char* subjects[] = {wildcard.c_str()};
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = options.name.c_str();
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = options.replicas;
    cfg.AllowDirect = true;
    cfg.DenyDelete = true;
    auto& in = c.internals();
    jsStreamInfo* si = nullptr;
    jsErrCode jerr{};
    natsStatus s = detail::with_retry(
        in, [&](jsErrCode& e) { return js_AddStream(&si, in.js, &cfg, nullptr, &e); }, jerr);
    if (s != NATS_OK && jerr == JSStreamNameExistErr)  // exists with another configuration: use it as it is
        s = detail::with_retry(
            in, [&](jsErrCode& e) { return js_GetStreamInfo(&si, in.js, cfg.Name, nullptr, &e); }, jerr);
    if (s != NATS_OK) {
        errc code = detail::transient(s, jerr) ? errc::unavailable : errc::io_error;
        return make_error(code, detail::describe(("creating stream " + options.name).c_str(), s, jerr));
    }
    jsStreamInfo_Destroy(si);
    return std::unique_ptr<event_stream>(new event_stream(c, options));
}

event_stream::~event_stream() = default;

std::string event_stream::subject(std::string_view session) const {
    return options_.subject_prefix + "." + encode_token(session);
}

result<uint64_t> event_stream::append(std::string_view session, std::string_view data, uint64_t expected_last) {
    if (!memory::valid_session_id(session))
        return make_error(errc::invalid_argument, "bad session id '" + std::string(session) + "'");
    auto& in = client_.internals();
    if (int64_t(data.size()) > natsConnection_GetMaxPayload(in.conn) - 1024)
        return make_error(errc::invalid_argument,
                          "event of " + std::to_string(data.size()) + " bytes exceeds the cluster's payload limit");
    auto r =
        detail::fenced_publish(in, options_.name, subject(session), data, expected_last, new_msg_id(), stream_last_);
    if (r.status == NATS_OK) return r.seq;
    if (r.fenced)
        return make_error(errc::busy, "fenced: session '" + std::string(session) +
                                          "' was appended to by another writer (expected last sequence " +
                                          std::to_string(expected_last) + ")");
    errc code = detail::transient(r.status, r.jerr) ? errc::unavailable : errc::io_error;
    return make_error(code,
                      detail::describe(("appending to session " + std::string(session)).c_str(), r.status, r.jerr));
}

result<uint64_t> event_stream::last_seq(std::string_view session) {
    if (!memory::valid_session_id(session))
        return make_error(errc::invalid_argument, "bad session id '" + std::string(session) + "'");
    auto& in = client_.internals();
    uint64_t seq = 0;
    std::string id;
    jsErrCode jerr{};
    const std::string subj = subject(session);
    natsStatus s = detail::with_retry(
        in, [&](jsErrCode& e) { return detail::last_on_subject(in, options_.name, subj, seq, id, e); }, jerr);
    if (s != NATS_OK) return make_error(errc::unavailable, detail::describe("reading the last event", s, jerr));
    return seq;
}

namespace {

// Reads subject's messages up to stream sequence last through an ordered consumer.
status read_through_consumer(client::impl& in, const std::string& stream, const std::string& subj, uint64_t last,
                             std::vector<stream_event>& out) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    natsSubscription* sub = nullptr;
    jsErrCode jerr{};
    natsStatus s = js_SubscribeSync(&sub, in.js, subj.c_str(), nullptr, &so, &jerr);
    if (s != NATS_OK)
        return make_error(errc::unavailable, detail::describe("subscribing to a session's events", s, jerr));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(in.options.retry_ms);
    status result;
    uint64_t seen = 0;
    while (seen < last) {
        natsMsg* msg = nullptr;
        s = natsSubscription_NextMsg(&msg, sub, 500);
        if (s == NATS_TIMEOUT && std::chrono::steady_clock::now() < deadline) continue;
        if (s != NATS_OK) {
            result = make_error(errc::unavailable, detail::describe("reading a session's events", s));
            break;
        }
        jsMsgMetaData* meta = nullptr;
        if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
            seen = meta->Sequence.Stream;
            jsMsgMetaData_Destroy(meta);
            out.push_back({seen, std::string(natsMsg_GetData(msg), size_t(natsMsg_GetDataLength(msg)))});
        }
        natsMsg_Destroy(msg);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return result;
}

// Reads subject's messages up to stream sequence last one at a time with direct gets (answered by any
// replica, no consumer: works while JetStream's meta leader is being elected). A replica that is behind
// answers "not found" before `last`: retried until the client's retry_ms.
status read_by_direct_get(client::impl& in, const std::string& stream, const std::string& subj, uint64_t last,
                          std::vector<stream_event>& out) {
    out.clear();
    uint64_t next = 1;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(in.options.retry_ms);
    while (next <= last) {
        jsDirectGetMsgOptions o;
        jsDirectGetMsgOptions_Init(&o);
        o.Sequence = next;
        o.NextBySubject = subj.c_str();
        natsMsg* msg = nullptr;
        natsStatus s = js_DirectGetMsg(&msg, in.js, stream.c_str(), nullptr, &o);
        if (s != NATS_OK) {
            if (std::chrono::steady_clock::now() >= deadline)
                return make_error(errc::unavailable, detail::describe("reading a session's events", s));
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        uint64_t seq = natsMsg_GetSequence(msg);
        out.push_back({seq, std::string(natsMsg_GetData(msg), size_t(natsMsg_GetDataLength(msg)))});
        natsMsg_Destroy(msg);
        next = seq + 1;
    }
    return {};
}

}  // namespace

result<std::vector<stream_event>> event_stream::read(std::string_view session) {
    auto last = last_seq(session);
    if (!last) return last.error();
    std::vector<stream_event> events;
    if (*last == 0) return events;
    auto& in = client_.internals();
    const std::string subj = subject(session);
    auto st = read_through_consumer(in, options_.name, subj, *last, events);
    if (!st.ok()) st = read_by_direct_get(in, options_.name, subj, *last, events);
    if (!st.ok()) return st;
    return events;
}

status event_stream::purge(std::string_view session) {
    if (!memory::valid_session_id(session))
        return make_error(errc::invalid_argument, "bad session id '" + std::string(session) + "'");
    auto& in = client_.internals();
    const std::string subj = subject(session);
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Purge.Subject = subj.c_str();
    jsErrCode jerr{};
    natsStatus s = detail::with_retry(
        in, [&](jsErrCode& e) { return js_PurgeStream(in.js, options_.name.c_str(), &o, &e); }, jerr);
    if (s != NATS_OK) return make_error(errc::unavailable, detail::describe("purging a session's events", s, jerr));
    return {};
}

}  // namespace mnemos::cluster
