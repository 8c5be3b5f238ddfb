#include "cluster/kv_bucket.h"

#include <atomic>
#include <chrono>

#include "cluster/src/fenced_publish.h"
#include "cluster/src/nats_internal.h"

namespace mnemos::cluster {

struct kv_bucket::impl {
    client::impl& conn;                    // the connection (outlives the bucket)
    kvStore* kv = nullptr;                 // owned
    std::string stream;                    // KV_<bucket>: the stream behind the bucket
    std::string subject_prefix;            // $KV.<bucket>.
    std::atomic<uint64_t> stream_last{0};  // that stream's last sequence as last seen (fenced_publish.h)
    explicit impl(client::impl& c) : conn(c) {}
    ~impl() {
        if (kv) kvStore_Destroy(kv);
    }
};

bool valid_kv_key(std::string_view key) {
    if (key.empty() || key.front() == '.' || key.back() == '.') return false;
    for (char c : key)
        if (!(isalnum((unsigned char)c) || c == '-' || c == '/' || c == '_' || c == '=' || c == '.')) return false;
    return true;
}

namespace {

bool valid_bucket_name(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!(isalnum((unsigned char)c) || c == '_' || c == '-')) return false;
    return true;
}

status key_error(std::string_view key) {
    return make_error(errc::invalid_argument, "bad key-value key '" + std::string(key) + "'");
}

status failure(const char* what, natsStatus s, jsErrCode jerr) {
    return make_error(detail::transient(s, jerr) ? errc::unavailable : errc::io_error, detail::describe(what, s, jerr));
}

}  // namespace

// Writes key only when its last revision is expected (0: none), serializably (fenced_publish.h).
static detail::fenced_result conditional_put(kv_bucket::impl& b, const std::string& key, std::string_view value,
                                             uint64_t expected) {
    static std::atomic<uint64_t> counter{0};
    const std::string id = "kv-" + std::to_string(uintptr_t(&b)) + "-" + std::to_string(counter.fetch_add(1)) + "-" +
                           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    return detail::fenced_publish(b.conn, b.stream, b.subject_prefix + key, value, expected, id, b.stream_last);
}

kv_bucket::kv_bucket(std::unique_ptr<impl> p, bucket_options options)
    : impl_(std::move(p)), options_(std::move(options)) {}
kv_bucket::~kv_bucket() = default;

result<std::unique_ptr<kv_bucket>> kv_bucket::open(client& c, const bucket_options& options) {
    if (!valid_bucket_name(options.name))
        return make_error(errc::invalid_argument, "bad bucket name '" + options.name + "'");
    if (options.replicas < 1 || options.replicas > 5 || options.ttl_ms < 0)
        return make_error(errc::invalid_argument, "bucket " + options.name + ": replicas 1 to 5, TTL >= 0");
    auto p = std::make_unique<impl>(c.internals());
    p->stream = "KV_" + options.name;
    p->subject_prefix = "$KV." + options.name + ".";
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = options.name.c_str();
    cfg.Replicas = options.replicas;
    cfg.TTL = options.ttl_ms * 1000000;  // libnats 3.4 takes nanoseconds here
    cfg.MaxValueSize = options.max_value_size;
    cfg.StorageType = js_FileStorage;
    cfg.History = 1;
    jsErrCode jerr{};
    auto& in = c.internals();
    natsStatus s = detail::with_retry(
        in, [&](jsErrCode&) { return js_CreateKeyValue(&p->kv, in.js, &cfg); }, jerr);
    if (s != NATS_OK) {  // exists with another configuration: open it as it is
        const status created = failure(("creating bucket " + options.name).c_str(), s, jerr);
        s = detail::with_retry(
            in, [&](jsErrCode&) { return js_KeyValue(&p->kv, in.js, cfg.Bucket); }, jerr);
        if (s != NATS_OK) return created;
    }
    return std::unique_ptr<kv_bucket>(new kv_bucket(std::move(p), options));
}

result<kv_entry> kv_bucket::get(std::string_view key) {
    if (!valid_kv_key(key)) return key_error(key);
    // From the stream leader (kvStore_Get may be answered by a replica that is behind: a value just written
    // could read as absent).
    const std::string k(key), subject = impl_->subject_prefix + k;
    natsMsg* msg = nullptr;
    jsErrCode jerr{};
    natsStatus s = detail::with_retry(
        impl_->conn,
        [&](jsErrCode& e) {
            return js_GetLastMsg(&msg, impl_->conn.js, impl_->stream.c_str(), subject.c_str(), nullptr, &e);
        },
        jerr);
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
        return make_error(errc::not_found, options_.name + ": no key '" + k + "'");
    if (s != NATS_OK) return failure(("reading " + options_.name + "/" + k).c_str(), s, jerr);
    const char* op = nullptr;
    const bool deleted = natsMsgHeader_Get(msg, "KV-Operation", &op) == NATS_OK && op &&
                         (std::string_view(op) == "DEL" || std::string_view(op) == "PURGE");
    kv_entry out{std::string(natsMsg_GetData(msg), size_t(natsMsg_GetDataLength(msg))), natsMsg_GetSequence(msg)};
    natsMsg_Destroy(msg);
    if (deleted) return make_error(errc::not_found, options_.name + ": key '" + k + "' was deleted");
    return out;
}

result<uint64_t> kv_bucket::put(std::string_view key, std::string_view value) {
    if (!valid_kv_key(key)) return key_error(key);
    const std::string k(key);
    uint64_t rev = 0;
    jsErrCode jerr{};
    natsStatus s = detail::with_retry(
        impl_->conn,
        [&](jsErrCode&) { return kvStore_Put(&rev, impl_->kv, k.c_str(), value.data(), int(value.size())); }, jerr);
    if (s != NATS_OK) return failure(("writing " + options_.name + "/" + k).c_str(), s, jerr);
    return rev;
}

result<uint64_t> kv_bucket::create(std::string_view key, std::string_view value) {
    if (!valid_kv_key(key)) return key_error(key);
    const std::string k(key);
    auto r = conditional_put(*impl_, k, value, 0);
    if (r.status == NATS_OK) return r.seq;
    if (!r.fenced) return failure(("creating " + options_.name + "/" + k).c_str(), r.status, r.jerr);
    auto existing = get(key);
    if (existing || existing.error().code() != errc::not_found)
        return make_error(errc::already_exists, options_.name + ": key '" + k + "' exists");
    // Deleted: its last revision is a delete marker, which a conditional write may replace.
    if (r.subject_last) {
        r = conditional_put(*impl_, k, value, r.subject_last);
        if (r.status == NATS_OK) return r.seq;
        if (!r.fenced) return failure(("creating " + options_.name + "/" + k).c_str(), r.status, r.jerr);
    }
    return make_error(errc::already_exists, options_.name + ": key '" + k + "' was created meanwhile");
}

result<uint64_t> kv_bucket::update(std::string_view key, std::string_view value, uint64_t expected_revision) {
    if (!valid_kv_key(key)) return key_error(key);
    const std::string k(key);
    auto r = conditional_put(*impl_, k, value, expected_revision);
    if (r.status == NATS_OK) return r.seq;
    if (!r.fenced) return failure(("updating " + options_.name + "/" + k).c_str(), r.status, r.jerr);
    return make_error(errc::busy, options_.name + ": key '" + k + "' changed since revision " +
                                      std::to_string(expected_revision) + " (or expired)");
}

status kv_bucket::erase(std::string_view key) {
    if (!valid_kv_key(key)) return key_error(key);
    const std::string k(key);
    jsErrCode jerr{};
    natsStatus s = detail::with_retry(
        impl_->conn, [&](jsErrCode&) { return kvStore_Delete(impl_->kv, k.c_str()); }, jerr);
    if (s != NATS_OK) return failure(("deleting " + options_.name + "/" + k).c_str(), s, jerr);
    return {};
}

result<std::vector<std::string>> kv_bucket::keys() {
    // The stream leader's list of subjects (kvStore_Keys' consumer may be behind a write just made), less
    // those whose last entry is a delete marker.
    const std::string filter = impl_->subject_prefix + ">";
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = filter.c_str();
    jsStreamInfo* si = nullptr;
    jsErrCode jerr{};
    natsStatus s = detail::with_retry(
        impl_->conn, [&](jsErrCode& e) { return js_GetStreamInfo(&si, impl_->conn.js, impl_->stream.c_str(), &o, &e); },
        jerr);
    if (s != NATS_OK) return failure(("listing " + options_.name).c_str(), s, jerr);
    std::vector<std::string> subjects;
    if (si->State.Subjects)
        for (int i = 0; i < si->State.Subjects->Count; ++i) subjects.emplace_back(si->State.Subjects->List[i].Subject);
    jsStreamInfo_Destroy(si);
    std::vector<std::string> out;
    for (const auto& subj : subjects) {
        std::string key = subj.substr(impl_->subject_prefix.size());
        auto e = get(key);
        if (e)
            out.push_back(std::move(key));
        else if (e.error().code() != errc::not_found)
            return e.error();
    }
    return out;
}

}  // namespace mnemos::cluster
