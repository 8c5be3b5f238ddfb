// The RocksDB store: column families, event logs, sessions, the write-behind
// block store, references and garbage collection. See memory/store.h.
#include "memory/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_checksum.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "engine/kv_cache.h"
#include "engine/sha256.h"
#include "memory/codec.h"
#include "memory/src/store_internal.h"

namespace mnemos::memory {

namespace {

using json = nlohmann::json;
using detail::event_key;
using detail::event_prefix;
using detail::event_prefix_end;
using detail::meta_from_json;
using detail::read_be64;
using engine::block_hash;

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

status from_rocks(const rocksdb::Status& s, const char* what) {
    if (s.ok()) return ok_status();
    const errc c = s.IsNotFound()          ? errc::not_found
                   : s.IsCorruption()      ? errc::corrupt
                   : s.IsInvalidArgument() ? errc::invalid_argument
                                           : errc::io_error;
    return make_error(c, std::string(what) + ": " + s.ToString());
}

// refs: 'B' hash id  (who uses a block) and 'S' id 0x00 hash  (which blocks a session uses).
std::string ref_by_block(const block_hash& h, std::string_view id) {
    std::string k("B");
    k.append(reinterpret_cast<const char*>(h.bytes.data()), 32);
    k += id;
    return k;
}
std::string ref_block_prefix(const block_hash& h) {
    std::string k("B");
    k.append(reinterpret_cast<const char*>(h.bytes.data()), 32);
    return k;
}
std::string ref_by_session(std::string_view id, const block_hash& h) {
    std::string k("S");
    k += id;
    k.push_back('\0');
    k.append(reinterpret_cast<const char*>(h.bytes.data()), 32);
    return k;
}
std::string ref_session_prefix(std::string_view id) {
    std::string k("S");
    k += id;
    k.push_back('\0');
    return k;
}

// CPU time of the calling thread (user + system), ns.
uint64_t thread_cpu_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

rocksdb::Slice hash_slice(const block_hash& h) { return {reinterpret_cast<const char*>(h.bytes.data()), 32}; }

}  // namespace

bool valid_session_id(std::string_view id) {
    if (id.empty() || id.size() > 128) return false;
    for (char c : id)
        if (uint8_t(c) < 0x21 || uint8_t(c) > 0x7e) return false;
    return true;
}

// ---------------------------------------------------------------------------
// impl
// ---------------------------------------------------------------------------

class block_adaptor final : public engine::block_store_i {
  public:
    explicit block_adaptor(store::impl* s) : s_(s) {}
    bool load(const block_hash& hash, std::span<uint8_t> out) override;
    size_t load_many(std::span<const block_hash> hashes, std::span<const std::span<uint8_t>> outs,
                     std::span<uint8_t> ok) override;
    void persist(const block_hash& hash, const block_hash& parent, std::span<const engine::token_id> tokens,
                 std::span<const uint8_t> page_bytes) override;
    void wait_persisted() override;
    void persist_summary(const block_hash& hash, std::span<const uint8_t> bytes) override;
    size_t load_summaries(std::span<const block_hash> hashes, std::span<const std::span<uint8_t>> outs,
                          std::span<uint8_t> ok) override;

  private:
    store::impl* s_;  // the owner
};

struct store::impl {
    struct job {
        block_hash hash, parent;
        std::vector<engine::token_id> tokens;
        std::vector<uint8_t> bytes;
    };

    store_options opt;
    std::unique_ptr<rocksdb::DB> db;
    rocksdb::ColumnFamilyHandle* cf_default = nullptr;
    rocksdb::ColumnFamilyHandle* cf_events = nullptr;
    rocksdb::ColumnFamilyHandle* cf_sessions = nullptr;
    rocksdb::ColumnFamilyHandle* cf_kv = nullptr;
    rocksdb::ColumnFamilyHandle* cf_refs = nullptr;
    rocksdb::ColumnFamilyHandle* cf_summaries = nullptr;  // page summaries beside the kv blocks (sparse attention)
    rocksdb::WriteOptions sync_wo, kv_wo;  // events, sessions, refs (synced); KV blocks (a cache: never synced)
    static constexpr size_t write_batch_bytes = size_t(8) << 20;  // page bytes per write-behind WriteBatch
    block_adaptor adaptor{this};

    std::mutex log_mu;  // serializes appends, session updates, deletes and gc (sequence numbers, refs)
    std::unordered_map<std::string, uint64_t> next_seq;  // cached next sequence number per session

    std::mutex q_mu;  // guards the queue and the counters below
    std::condition_variable q_cv, q_done_cv, q_room_cv;
    std::deque<job> queue;
    bool stopping = false;
    uint64_t in_flight = 0;                                           // jobs taken by the worker, not yet written
    std::unordered_set<block_hash, engine::block_hash_hasher> known;  // hashes known stored and valid
    std::thread worker;

    // Counters since open (under q_mu); n_pending and the lifetime fields are filled in by store::counters().
    store_stats ctr;

    ~impl() { close(); }

    void close() {
        if (!db) return;
        {
            std::unique_lock lk(q_mu);
            stopping = true;
        }
        q_cv.notify_all();
        flush_cv.notify_all();
        if (worker.joinable()) worker.join();
        if (flusher.joinable()) flusher.join();
        try {
            save_counters();
        } catch (...) {
        }
        for (auto* h : {cf_default, cf_events, cf_sessions, cf_kv, cf_refs, cf_summaries})
            if (h) db->DestroyColumnFamilyHandle(h);
        cf_default = cf_events = cf_sessions = cf_kv = cf_refs = cf_summaries = nullptr;
        db->Close();
        db.reset();
    }

    // Reads of KV values. RocksDB's checksums are verified too (verify_checksums): without them a damaged
    // table block of the kv family (keys, blob indexes) is parsed as it is, and can crash the process; our
    // CRC-32C covers key and value besides. Values do not go through the block cache.
    static rocksdb::ReadOptions kv_ro() {
        rocksdb::ReadOptions ro;
        ro.verify_checksums = true;
        ro.fill_cache = false;
        return ro;
    }

    // Periodic flush of the kv and summaries memtables (kv_flush_interval_ms / kv_flush_bytes; under q_mu).
    bool kv_dirty = false;
    uint64_t kv_dirty_bytes = 0;
    std::chrono::steady_clock::time_point kv_dirty_since;
    uint64_t n_periodic_flushes = 0;
    std::condition_variable flush_cv;
    std::thread flusher;

    bool periodic_flush_on() const { return !opt.kv_wal && (opt.kv_flush_interval_ms > 0 || opt.kv_flush_bytes > 0); }

    void mark_kv_dirty(uint64_t bytes) {  // q_mu held
        if (!periodic_flush_on()) return;
        if (!kv_dirty) kv_dirty_since = std::chrono::steady_clock::now();
        kv_dirty = true;
        kv_dirty_bytes += bytes;
        if (opt.kv_flush_interval_ms > 0 || (opt.kv_flush_bytes > 0 && kv_dirty_bytes >= opt.kv_flush_bytes))
            flush_cv.notify_all();
    }

    void run_flusher() {
        std::unique_lock lk(q_mu);
        for (;;) {
            if (stopping) return;
            if (!kv_dirty) {
                flush_cv.wait(lk);
                continue;
            }
            const bool by_bytes = opt.kv_flush_bytes > 0 && kv_dirty_bytes >= opt.kv_flush_bytes;
            if (!by_bytes) {
                if (opt.kv_flush_interval_ms <= 0) {
                    flush_cv.wait(lk);
                    continue;
                }
                const auto due = kv_dirty_since + std::chrono::milliseconds(opt.kv_flush_interval_ms);
                if (std::chrono::steady_clock::now() < due) {
                    flush_cv.wait_until(lk, due);
                    continue;
                }
            }
            kv_dirty = false;
            kv_dirty_bytes = 0;
            lk.unlock();
            rocksdb::FlushOptions fo;
            fo.wait = true;
            fo.allow_write_stall = true;
            const auto s = db->Flush(fo, std::vector<rocksdb::ColumnFamilyHandle*>{cf_kv, cf_summaries});
            if (!s.ok()) std::fprintf(stderr, "mnemos store: periodic KV flush failed: %s\n", s.ToString().c_str());
            lk.lock();
            ++n_periodic_flushes;
        }
    }

    // Lifetime counters, in family default under counters_key: as loaded at open, plus this run's on close.
    static constexpr const char* counters_key = "mnemos/counters";
    uint64_t base_loads = 0, base_load_hits = 0, base_load_missing = 0, base_load_corrupt = 0;
    uint64_t base_persists = 0, base_persist_skipped = 0;

    void load_counters() {
        std::string v;
        if (!db->Get(rocksdb::ReadOptions(), cf_default, counters_key, &v).ok()) return;
        json j = json::parse(v, nullptr, false);
        if (!j.is_object()) return;
        auto get = [&](const char* k) { return j.contains(k) && j[k].is_number_unsigned() ? j[k].get<uint64_t>() : 0; };
        base_loads = get("loads");
        base_load_hits = get("load_hits");
        base_load_missing = get("load_missing");
        base_load_corrupt = get("load_corrupt");
        base_persists = get("persists");
        base_persist_skipped = get("persist_skipped");
    }

    void fill_lifetime(store_stats& st) {  // q_mu held
        st.lifetime_loads = base_loads + ctr.n_loads;
        st.lifetime_load_hits = base_load_hits + ctr.n_load_hits;
        st.lifetime_load_missing = base_load_missing + ctr.n_load_missing;
        st.lifetime_load_corrupt = base_load_corrupt + ctr.n_load_corrupt;
        st.lifetime_persists = base_persists + ctr.n_persists;
        st.lifetime_persist_skipped = base_persist_skipped + ctr.n_persist_skipped;
    }

    void save_counters() {  // worker stopped
        if (ctr.n_loads == 0 && ctr.n_persists == 0) return;
        store_stats st;
        fill_lifetime(st);
        const json j = {{"loads", st.lifetime_loads},
                        {"load_hits", st.lifetime_load_hits},
                        {"load_missing", st.lifetime_load_missing},
                        {"load_corrupt", st.lifetime_load_corrupt},
                        {"persists", st.lifetime_persists},
                        {"persist_skipped", st.lifetime_persist_skipped}};
        db->Put(sync_wo, cf_default, counters_key, j.dump()).PermitUncheckedError();
    }

    bool is_known(const block_hash& h) {
        std::lock_guard lk(q_mu);
        return known.count(h) != 0;
    }

    // Whether a valid block is stored under h (reads it).
    bool stored_valid(const block_hash& h) {
        rocksdb::PinnableSlice v;
        if (!db->Get(kv_ro(), cf_kv, hash_slice(h), &v).ok()) return false;
        return inspect_block(h, std::string_view(v.data(), v.size())).ok();
    }

    void run_worker() {
        for (;;) {
            std::vector<job> batch;
            {
                std::unique_lock lk(q_mu);
                q_cv.wait(lk, [&] { return stopping || !queue.empty(); });
                if (queue.empty()) return;  // stopping and drained
                // Everything queued, up to write_batch_bytes of pages: one encode pass and one write.
                size_t bytes = 0;
                while (!queue.empty() && (batch.empty() || bytes < write_batch_bytes)) {
                    bytes += queue.front().bytes.size();
                    batch.push_back(std::move(queue.front()));
                    queue.pop_front();
                }
                in_flight += batch.size();
            }
            q_room_cv.notify_all();
            write_jobs(batch);
            {
                std::lock_guard lk(q_mu);
                in_flight -= batch.size();
            }
            q_done_cv.notify_all();
        }
    }

    // Encodes the blocks not stored yet and writes them in one WriteBatch (kv_wo: no WAL unless kv_wal).
    void write_jobs(std::vector<job>& jobs) {
        rocksdb::WriteBatch wb;
        std::vector<block_hash> written, skipped;
        std::unordered_set<block_hash, engine::block_hash_hasher> in_batch;
        const int64_t t = now_ms();
        for (job& j : jobs) {
            bool skip = is_known(j.hash) || in_batch.count(j.hash);
            if (!skip) {
                std::string dummy;
                bool may_exist = db->KeyMayExist(rocksdb::ReadOptions(), cf_kv, hash_slice(j.hash), &dummy);
                skip = may_exist && stored_valid(j.hash);
            }
            if (skip) {
                skipped.push_back(j.hash);
                continue;
            }
            const std::string v = encode_block(opt.codec, opt.int8_group, j.hash, j.parent, j.tokens, j.bytes, t);
            std::vector<uint8_t>().swap(j.bytes);  // the page copy is no longer needed
            wb.Put(cf_kv, hash_slice(j.hash), v);
            written.push_back(j.hash);
            in_batch.insert(j.hash);
        }
        rocksdb::Status s;
        if (wb.Count()) s = db->Write(kv_wo, &wb);
        std::lock_guard lk(q_mu);
        ctr.n_persist_skipped += skipped.size();
        for (const auto& h : skipped) known.insert(h);
        if (s.ok()) {
            for (const auto& h : written) known.insert(h);
            if (wb.Count()) mark_kv_dirty(wb.GetDataSize());
        } else {
            ctr.n_persist_failed += written.size();
            std::fprintf(stderr, "mnemos store: block write failed: %s\n", s.ToString().c_str());
        }
    }

    // Waits until the write-behind queue is empty (every block handed over is in the memtable).
    void drain() {
        std::unique_lock lk(q_mu);
        q_done_cv.wait(lk, [&] { return queue.empty() && in_flight == 0; });
    }

    // The session's next sequence number. Errors: corrupt / io_error when its last key cannot be read (a
    // damaged table): the number is unknown then, and guessing 0 would overwrite the log.
    result<uint64_t> next_seq_of(std::string_view id) {  // log_mu held
        auto it = next_seq.find(std::string(id));
        if (it != next_seq.end()) return it->second;
        uint64_t next = 0;
        std::unique_ptr<rocksdb::Iterator> iter(db->NewIterator(rocksdb::ReadOptions(), cf_events));
        iter->SeekForPrev(event_key(id, UINT64_MAX));
        if (!iter->status().ok()) return from_rocks(iter->status(), "read event log");
        const std::string pre = event_prefix(id);
        if (iter->Valid() && iter->key().starts_with(pre) && iter->key().size() == pre.size() + 8)
            next = read_be64(iter->key().data() + pre.size()) + 1;
        next_seq.emplace(std::string(id), next);
        return next;
    }

    result<session_meta> read_meta(std::string_view id) {
        std::string v;
        auto s = db->Get(rocksdb::ReadOptions(), cf_sessions, rocksdb::Slice(id.data(), id.size()), &v);
        if (s.IsNotFound()) return make_error(errc::not_found, "no session '" + std::string(id) + "'");
        if (!s.ok()) return from_rocks(s, "read session");
        return meta_from_json(v);
    }

    // Whether a session references the block; true when the references cannot be read (keep it).
    bool block_referenced(const block_hash& h) {
        std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf_refs));
        const std::string pre = ref_block_prefix(h);
        it->Seek(pre);
        if (!it->status().ok()) return true;
        return it->Valid() && it->key().starts_with(pre);
    }
};

void block_adaptor::wait_persisted() { s_->drain(); }

void block_adaptor::persist_summary(const block_hash& hash, std::span<const uint8_t> bytes) {
    try {
        const std::string v = encode_summary(hash, bytes);
        auto st = s_->db->Put(s_->kv_wo, s_->cf_summaries, hash_slice(hash), v);
        if (!st.ok()) {
            std::fprintf(stderr, "mnemos store: summary write failed: %s\n", st.ToString().c_str());
        } else {
            std::lock_guard lk(s_->q_mu);
            s_->mark_kv_dirty(v.size());
        }
    } catch (...) {
    }
}

size_t block_adaptor::load_summaries(std::span<const block_hash> hashes, std::span<const std::span<uint8_t>> outs,
                                     std::span<uint8_t> ok) {
    std::fill(ok.begin(), ok.end(), uint8_t(0));
    size_t n_ok = 0;
    try {
        const size_t n = hashes.size();
        std::vector<rocksdb::Slice> keys(n);
        std::vector<rocksdb::PinnableSlice> vals(n);
        std::vector<rocksdb::Status> sts(n);
        for (size_t i = 0; i < n; ++i) keys[i] = hash_slice(hashes[i]);
        s_->db->MultiGet(rocksdb::ReadOptions(), s_->cf_summaries, n, keys.data(), vals.data(), sts.data());
        for (size_t i = 0; i < n; ++i) {
            if (!sts[i].ok()) continue;
            ok[i] = decode_summary(hashes[i], std::string_view(vals[i].data(), vals[i].size()), outs[i]);
            n_ok += ok[i];
        }
    } catch (...) {
    }
    return n_ok;
}

bool block_adaptor::load(const block_hash& hash, std::span<uint8_t> out) {
    uint8_t ok = 0;
    load_many({&hash, 1}, {&out, 1}, {&ok, 1});
    return ok != 0;
}

size_t block_adaptor::load_many(std::span<const block_hash> hashes, std::span<const std::span<uint8_t>> outs,
                                std::span<uint8_t> ok) {
    using clock = std::chrono::steady_clock;
    auto ns = [](clock::time_point a, clock::time_point b) {
        return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
    };
    const auto t_start = clock::now();
    const size_t n = hashes.size();
    std::fill(ok.begin(), ok.end(), uint8_t(0));
    // Blocks per MultiGet: about load_chunk_bytes of pages, so that a value is still in cache when it is verified
    // and decoded. Chunks are taken in turn by the caller and load_threads - 1 helper threads.
    const size_t page = n ? std::max<size_t>(1, outs[0].size()) : 1;
    const size_t chunk = std::clamp<size_t>(s_->opt.load_chunk_bytes / page, 1, 64);
    const size_t n_chunks = (n + chunk - 1) / chunk;
    const size_t n_threads =
        std::clamp<size_t>(size_t(std::max(1, s_->opt.load_threads)), 1, std::max<size_t>(1, n_chunks));

    struct tally {
        uint64_t n_hits = 0, n_corrupt = 0, n_batches = 0, value_bytes = 0, read_ns = 0, decode_ns = 0, cpu_ns = 0;
        std::vector<block_hash> hit, bad;  // for the known set
    };
    std::vector<tally> tallies;
    try {
        tallies.resize(n_threads);
    } catch (...) {
        return 0;  // out of memory: nothing loaded (ok is all 0), the blocks are recomputed
    }
    std::atomic<size_t> next{0};
    auto work = [&](tally& t) {
        const uint64_t cpu0 = thread_cpu_ns();
        struct cpu_guard {  // adds this thread's CPU time on every exit
            tally& t;
            uint64_t cpu0;
            ~cpu_guard() { t.cpu_ns += thread_cpu_ns() - cpu0; }
        } guard{t, cpu0};
        try {
            // RocksDB's checksums too (see kv_ro): a damaged table block must be an error, not parsed.
            const rocksdb::ReadOptions ro = store::impl::kv_ro();
            std::vector<rocksdb::Slice> keys(chunk);
            std::vector<rocksdb::PinnableSlice> vals(chunk);
            std::vector<rocksdb::Status> sts(chunk);
            for (size_t c; (c = next.fetch_add(1)) < n_chunks;) {
                const size_t b = c * chunk, m = std::min(chunk, n - b);
                for (size_t i = 0; i < m; ++i) keys[i] = hash_slice(hashes[b + i]);
                const auto t0 = clock::now();
                s_->db->MultiGet(ro, s_->cf_kv, m, keys.data(), vals.data(), sts.data());
                const auto t1 = clock::now();
                for (size_t i = 0; i < m; ++i) {
                    const block_hash& h = hashes[b + i];
                    if (sts[i].ok()) {
                        t.value_bytes += vals[i].size();
                        if (decode_block(h, std::string_view(vals[i].data(), vals[i].size()), outs[b + i]).ok()) {
                            ok[b + i] = 1;
                            ++t.n_hits;
                            t.hit.push_back(h);
                        } else {
                            ++t.n_corrupt;
                            t.bad.push_back(h);
                        }
                    } else if (!sts[i].IsNotFound()) {  // RocksDB's own check or an I/O failure: recomputed
                        ++t.n_corrupt;
                        t.bad.push_back(h);
                    }
                    vals[i].Reset();
                }
                t.read_ns += ns(t0, t1);
                t.decode_ns += ns(t1, clock::now());
                ++t.n_batches;
            }
        } catch (...) {
            // Out of memory or an exception from RocksDB: the blocks this thread did not finish stay missing.
        }
    };
    std::vector<std::thread> helpers;
    try {
        for (size_t i = 1; i < n_threads; ++i) helpers.emplace_back(work, std::ref(tallies[i]));
    } catch (...) {
        // No thread: the caller does the rest.
    }
    work(tallies[0]);
    for (auto& th : helpers) th.join();

    tally sum;
    for (const auto& t : tallies) {
        sum.n_hits += t.n_hits;
        sum.n_corrupt += t.n_corrupt;
        sum.n_batches += t.n_batches;
        sum.value_bytes += t.value_bytes;
        sum.read_ns += t.read_ns;
        sum.decode_ns += t.decode_ns;
        sum.cpu_ns += t.cpu_ns;
    }
    std::lock_guard lk(s_->q_mu);
    s_->ctr.n_loads += n;
    s_->ctr.n_load_hits += sum.n_hits;
    s_->ctr.n_load_corrupt += sum.n_corrupt;
    s_->ctr.n_load_missing += n - sum.n_hits - sum.n_corrupt;
    s_->ctr.n_load_batches += sum.n_batches;
    s_->ctr.load_value_bytes += sum.value_bytes;
    s_->ctr.load_read_ns += sum.read_ns;
    s_->ctr.load_decode_ns += sum.decode_ns;
    s_->ctr.load_wall_ns += ns(t_start, clock::now());
    s_->ctr.load_cpu_ns += sum.cpu_ns;
    for (const auto& t : tallies) {
        try {
            for (const auto& h : t.hit) s_->known.insert(h);
        } catch (...) {
        }
        for (const auto& h : t.bad) s_->known.erase(h);  // so a recomputed block gets written again
    }
    return size_t(sum.n_hits);
}

void block_adaptor::persist(const block_hash& hash, const block_hash& parent, std::span<const engine::token_id> tokens,
                            std::span<const uint8_t> page_bytes) {
    const auto t0 = std::chrono::steady_clock::now();
    auto account = [&] {  // q_mu held
        s_->ctr.persist_ns += uint64_t(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
    };
    try {
        {
            std::lock_guard lk(s_->q_mu);
            ++s_->ctr.n_persists;
            if (s_->stopping || s_->known.count(hash)) {
                ++(s_->stopping ? s_->ctr.n_persist_dropped : s_->ctr.n_persist_skipped);
                account();
                return;
            }
        }
        // The copy of the page, outside the lock (the worker keeps going meanwhile).
        store::impl::job j;
        j.hash = hash;
        j.parent = parent;
        j.tokens.assign(tokens.begin(), tokens.end());
        j.bytes.assign(page_bytes.begin(), page_bytes.end());
        std::unique_lock lk(s_->q_mu);
        const size_t cap = std::max<size_t>(1, s_->opt.write_behind_queue);
        if (s_->queue.size() >= cap) {
            if (s_->opt.drop_when_full) {
                ++s_->ctr.n_persist_dropped;
                account();
                return;
            }
            s_->q_room_cv.wait(lk, [&] { return s_->queue.size() < cap || s_->stopping; });
        }
        if (s_->stopping) {
            ++s_->ctr.n_persist_dropped;
            account();
            return;
        }
        s_->queue.push_back(std::move(j));
        account();
    } catch (...) {
        return;  // out of memory: the block is recomputed if needed
    }
    s_->q_cv.notify_one();
}

// ---------------------------------------------------------------------------
// store
// ---------------------------------------------------------------------------

store::store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

store::~store() {
    if (impl_) impl_->close();
}

const store_options& store::options() const { return impl_->opt; }

result<std::unique_ptr<store>> store::open(const store_options& options) {
    if (options.path.empty()) return make_error(errc::invalid_argument, "store_options.path is empty");
    if (options.codec != kv_codec::fp16 && options.codec != kv_codec::int8)
        return make_error(errc::invalid_argument, "store_options.codec is not fp16 or int8");
    try {
        // RocksDB's own files first: a damaged CURRENT, MANIFEST or WAL is refused here with the file named,
        // rather than opened as a shorter (or empty) database.
        if (!options.create_if_missing)
            if (auto missing = detail::refuse_missing_store(options.path); !missing.ok()) return missing;
        if (auto pre = detail::preflight_database(options.path); !pre.ok()) return pre;
        auto p = std::make_unique<impl>();
        p->opt = options;

        rocksdb::DBOptions dbo;
        dbo.create_if_missing = options.create_if_missing;
        // An existing database must list our families (a new one gets them all; one written before the
        // summaries family gets that one). A family missing from an existing MANIFEST means damage: creating
        // it would serve an empty family.
        bool existing = false;
        {
            std::vector<std::string> have;
            const auto ls = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), options.path, &have);
            existing = ls.ok();
            if (existing) {
                for (const auto& name : detail::family_names()) {
                    if (name == "summaries" || std::find(have.begin(), have.end(), name) != have.end()) continue;
                    return make_error(errc::corrupt, "the MANIFEST of " + options.path + " lists no column family '" +
                                                         name + "': the store is damaged (mnemos store repair)");
                }
            }
        }
        dbo.create_missing_column_families = true;
        // Refuse rather than guess: any damaged WAL record (acknowledged events) fails the open
        // (kAbsoluteConsistency; the default point-in-time recovery silently stops at it), and paranoid checks
        // fail it on a damaged table file.
        dbo.paranoid_checks = true;
        dbo.wal_recovery_mode = rocksdb::WALRecoveryMode::kAbsoluteConsistency;
        // Whole-file CRC-32C of every new table and blob file, kept in the MANIFEST (store check verifies).
        dbo.file_checksum_gen_factory = rocksdb::GetFileChecksumGenCrc32cFactory();
        dbo.max_manifest_file_size = uint64_t(64) << 20;
        dbo.max_background_jobs = 2;
        dbo.keep_log_file_num = 4;
        dbo.allow_mmap_reads = options.mmap_reads;
        // A resume reads a session's blocks in runs, in the order they were written: the kernel's readahead
        // must stay on (RocksDB's default marks every file random, and then a cold mmap'd blob file is read
        // one 4 KiB page fault at a time: 10x slower than with readahead).
        dbo.advise_random_on_open = false;

        auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
        auto table = [&](bool bloom) {
            rocksdb::BlockBasedTableOptions t;
            t.block_cache = cache;
            if (bloom) t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
            return std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(t));
        };
        // Small JSON values and keys: LZ4 everywhere, ZSTD at the bottom level (cold history).
        rocksdb::ColumnFamilyOptions small;
        small.compression = rocksdb::kLZ4Compression;
        small.bottommost_compression = rocksdb::kZSTD;
        small.table_factory = table(false);
        rocksdb::ColumnFamilyOptions points = small;  // sessions / refs: point lookups and prefix seeks
        points.table_factory = table(true);
        // KV blocks: values of hundreds of KiB in integrated blob files, keys in the LSM tree.
        rocksdb::ColumnFamilyOptions kv;
        kv.table_factory = table(true);
        kv.compression = rocksdb::kNoCompression;
        kv.enable_blob_files = true;
        kv.min_blob_size = options.min_blob_size;
        kv.blob_compression_type = options.compress_blobs ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
        // Blocks are immutable and deleted only by GC: automatic compactions never relocate blobs (with blob
        // GC on they rewrite the oldest files' live blobs, reading and writing them again, on the CPU the engine
        // needs); collect_garbage() reclaims the space of deleted blocks explicitly.
        kv.enable_blob_garbage_collection = false;
        kv.write_buffer_size = 64 << 20;

        std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
            {rocksdb::kDefaultColumnFamilyName, small},
            {"events", small},
            {"sessions", points},
            {"kv", kv},
            {"refs", points},
            {"summaries", points},
        };
        std::vector<rocksdb::ColumnFamilyHandle*> handles;
        rocksdb::DB* raw = nullptr;
        auto s = rocksdb::DB::Open(dbo, options.path, cfs, &handles, &raw);
        if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) return detail::store_in_use(options.path);
        if (!s.ok()) return from_rocks(s, ("open " + options.path).c_str());
        p->db.reset(raw);
        p->cf_default = handles[0];
        p->cf_events = handles[1];
        p->cf_sessions = handles[2];
        p->cf_kv = handles[3];
        p->cf_refs = handles[4];
        p->cf_summaries = handles[5];
        p->sync_wo.sync = options.sync_events;
        p->kv_wo.sync = false;  // blocks are a cache: never synced
        p->kv_wo.disableWAL = !options.kv_wal;
        p->load_counters();
        if (options.background_nice > 0) {
            // Compactions (never urgent: the kv family only holds keys and blob indexes) at the lowest CPU
            // priority; flushes keep theirs so that a full memtable never stalls the writer.
            rocksdb::Env::Default()->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::LOW);
        }
        p->worker = std::thread([raw_impl = p.get()] {
            if (raw_impl->opt.background_nice > 0)
                ::setpriority(PRIO_PROCESS, pid_t(::syscall(SYS_gettid)), raw_impl->opt.background_nice);
            raw_impl->run_worker();
        });
        if (p->periodic_flush_on()) p->flusher = std::thread([raw_impl = p.get()] { raw_impl->run_flusher(); });
        return std::unique_ptr<store>(new store(std::move(p)));
    } catch (const std::exception& e) {
        return make_error(errc::internal, std::string("store::open: ") + e.what());
    }
}

result<uint64_t> store::append_event(std::string_view id, std::string_view event_json) {
    if (!valid_session_id(id)) return make_error(errc::invalid_argument, "bad session id");
    if (!json::accept(event_json)) return make_error(errc::invalid_argument, "event is not valid JSON");
    try {
        std::lock_guard lk(impl_->log_mu);
        auto next = impl_->next_seq_of(id);
        if (!next) return next.error();
        const uint64_t seq = *next;
        session_meta m;
        auto old = impl_->read_meta(id);
        if (old) {
            m = std::move(*old);
        } else if (old.error().code() == errc::not_found) {
            m.id = std::string(id);
            m.created_ms = now_ms();
        } else {
            return old.error();
        }
        m.n_events = seq + 1;
        m.updated_ms = now_ms();
        rocksdb::WriteBatch wb;
        wb.Put(impl_->cf_events, event_key(id, seq), rocksdb::Slice(event_json.data(), event_json.size()));
        wb.Put(impl_->cf_sessions, rocksdb::Slice(id.data(), id.size()), detail::meta_to_json_text(m));
        auto s = impl_->db->Write(impl_->sync_wo, &wb);
        if (!s.ok()) return from_rocks(s, "append event");
        impl_->next_seq[std::string(id)] = seq + 1;
        return seq;
    } catch (const std::exception& e) {
        return make_error(errc::internal, std::string("append_event: ") + e.what());
    }
}

result<std::vector<event_record>> store::read_events(std::string_view id, uint64_t from_seq, uint64_t max_n) {
    if (!valid_session_id(id)) return make_error(errc::invalid_argument, "bad session id");
    try {
        std::vector<event_record> out;
        const std::string pre = event_prefix(id), end = event_prefix_end(id);
        rocksdb::ReadOptions ro;
        rocksdb::Slice upper(end);
        ro.iterate_upper_bound = &upper;
        std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf_events));
        for (it->Seek(event_key(id, from_seq)); it->Valid() && out.size() < max_n; it->Next()) {
            if (it->key().size() != pre.size() + 8 || !it->key().starts_with(pre)) continue;
            out.push_back({read_be64(it->key().data() + pre.size()), it->value().ToString()});
        }
        if (!it->status().ok()) return from_rocks(it->status(), "read events");
        return out;
    } catch (const std::exception& e) {
        return make_error(errc::internal, std::string("read_events: ") + e.what());
    }
}

status store::put_session(const session_meta& meta) {
    if (!valid_session_id(meta.id)) return make_error(errc::invalid_argument, "bad session id");
    if (!meta.extra_json.empty()) {
        json j = json::parse(meta.extra_json, nullptr, false);
        if (j.is_discarded() || !j.is_object())
            return make_error(errc::invalid_argument, "session_meta.extra_json is not a JSON object");
    }
    try {
        std::lock_guard lk(impl_->log_mu);
        session_meta m = meta;
        auto old = impl_->read_meta(meta.id);
        if (old) {
            m.n_events = old->n_events;
            if (m.created_ms == 0) m.created_ms = old->created_ms;
        } else if (old.error().code() != errc::not_found) {
            return old.error();
        } else {
            m.n_events = 0;
        }
        if (m.created_ms == 0) m.created_ms = now_ms();
        m.updated_ms = now_ms();
        auto s = impl_->db->Put(impl_->sync_wo, impl_->cf_sessions, m.id, detail::meta_to_json_text(m));
        return from_rocks(s, "put session");
    } catch (const std::exception& e) {
        return make_error(errc::internal, std::string("put_session: ") + e.what());
    }
}

result<session_meta> store::get_session(std::string_view id) {
    if (!valid_session_id(id)) return make_error(errc::invalid_argument, "bad session id");
    try {
        return impl_->read_meta(id);
    } catch (const std::exception& e) {
        return make_error(errc::internal, std::string("get_session: ") + e.what());
    }
}

result<std::vector<session_meta>> store::list_sessions() {
    try {
        std::vector<session_meta> out;
        std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf_sessions));
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
            auto m = meta_from_json(std::string_view(it->value().data(), it->value().size()));
            if (!m) return m.error();
            out.push_back(std::move(*m));
        }
        if (!it->status().ok()) return from_rocks(it->status(), "list sessions");
        return out;
    } catch (const std::exception& e) {
        return make_error(errc::internal, std::string("list_sessions: ") + e.what());
    }
}

status store::delete_session(std::string_view id) {
    if (!valid_session_id(id)) return make_error(errc::invalid_argument, "bad session id");
    try {
        std::lock_guard lk(impl_->log_mu);
        auto meta = impl_->read_meta(id);
        if (!meta && meta.error().code() != errc::not_found) return meta.error();
        auto next = impl_->next_seq_of(id);
        if (!next) return next.error();
        const bool has_events = *next > 0;
        if (!meta && !has_events) return make_error(errc::not_found, "no session '" + std::string(id) + "'");

        // The session's blocks, from its reverse references.
        std::vector<block_hash> blocks;
        const std::string spre = ref_session_prefix(id);
        {
            std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf_refs));
            for (it->Seek(spre); it->Valid() && it->key().starts_with(spre); it->Next()) {
                if (it->key().size() != spre.size() + 32) continue;
                block_hash h;
                std::memcpy(h.bytes.data(), it->key().data() + spre.size(), 32);
                blocks.push_back(h);
            }
        }
        rocksdb::WriteBatch wb;
        const std::string ev0 = event_prefix(id), ev1 = event_prefix_end(id);
        wb.DeleteRange(impl_->cf_events, ev0, ev1);
        wb.Delete(impl_->cf_sessions, rocksdb::Slice(id.data(), id.size()));
        for (const auto& h : blocks) {
            wb.Delete(impl_->cf_refs, ref_by_block(h, id));
            wb.Delete(impl_->cf_refs, ref_by_session(id, h));
        }
        auto s = impl_->db->Write(impl_->sync_wo, &wb);
        if (!s.ok()) return from_rocks(s, "delete session");
        impl_->next_seq.erase(std::string(id));

        // Then the blocks nobody references any more.
        rocksdb::WriteBatch kb;
        std::vector<block_hash> freed;
        for (const auto& h : blocks)
            if (!impl_->block_referenced(h)) {
                kb.Delete(impl_->cf_kv, hash_slice(h));
                kb.Delete(impl_->cf_summaries, hash_slice(h));
                freed.push_back(h);
            }
        if (kb.Count()) {
            s = impl_->db->Write(impl_->sync_wo, &kb);
            if (!s.ok()) return from_rocks(s, "delete session blocks");
            std::lock_guard ql(impl_->q_mu);
            for (const auto& h : freed) impl_->known.erase(h);
        }
        return ok_status();
    } catch (const std::exception& e) {
        return make_error(errc::internal, std::string("delete_session: ") + e.what());
    }
}

engine::block_store_i& store::blocks() { return impl_->adaptor; }

status store::add_block_refs(std::string_view id, std::span<const block_hash> hashes) {
    if (!valid_session_id(id)) return make_error(errc::invalid_argument, "bad session id");
    try {
        std::lock_guard lk(impl_->log_mu);
        rocksdb::WriteBatch wb;
        for (const auto& h : hashes) {
            wb.Put(impl_->cf_refs, ref_by_block(h, id), rocksdb::Slice());
            wb.Put(impl_->cf_refs, ref_by_session(id, h), rocksdb::Slice());
        }
        return from_rocks(impl_->db->Write(impl_->sync_wo, &wb), "add block refs");
    } catch (const std::exception& e) {
        return make_error(errc::internal, std::string("add_block_refs: ") + e.what());
    }
}

std::vector<block_hash> store::block_hashes(const block_hash& fingerprint, std::span<const engine::token_id> tokens,
                                            int32_t page_size, const engine::cache_scope& scope) {
    std::vector<block_hash> out;
    if (page_size <= 0) return out;
    block_hash parent = fingerprint;
    for (size_t i = 0; i + size_t(page_size) <= tokens.size(); i += size_t(page_size)) {
        parent = engine::kv_cache::scoped_hash(parent, tokens.subspan(i, size_t(page_size)),
                                               int64_t(i / size_t(page_size)), scope);
        out.push_back(parent);
    }
    return out;
}

bool store::has_block(const block_hash& hash) {
    rocksdb::PinnableSlice v;
    return impl_->db->Get(rocksdb::ReadOptions(), impl_->cf_kv, hash_slice(hash), &v).ok();
}

result<gc_report> store::collect_garbage(int64_t min_age_ms) {
    try {
        impl_->drain();
        std::lock_guard lk(impl_->log_mu);
        gc_report rep;
        const int64_t cutoff = now_ms() - min_age_ms;
        rocksdb::WriteBatch wb;
        std::vector<block_hash> freed;
        std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf_kv));
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
            ++rep.n_blocks_scanned;
            if (it->key().size() != 32) continue;
            block_hash h;
            std::memcpy(h.bytes.data(), it->key().data(), 32);
            if (impl_->block_referenced(h)) continue;
            const std::string_view v(it->value().data(), it->value().size());
            auto info = inspect_block(h, v);
            // A corrupt block is garbage regardless of age; a valid one only when old enough.
            if (info && info->written_ms > cutoff) continue;
            wb.Delete(impl_->cf_kv, it->key());
            wb.Delete(impl_->cf_summaries, it->key());
            ++rep.n_blocks_deleted;
            rep.bytes_deleted += v.size();
            freed.push_back(h);
        }
        if (!it->status().ok()) return from_rocks(it->status(), "gc scan");
        if (wb.Count()) {
            auto s = impl_->db->Write(impl_->sync_wo, &wb);
            if (!s.ok()) return from_rocks(s, "gc delete");
            {
                std::lock_guard ql(impl_->q_mu);
                for (const auto& h : freed) impl_->known.erase(h);
            }
            // Reclaim the space: a compaction of the kv family that relocates every live blob, so blob files
            // holding deleted blocks become entirely garbage and are removed.
            rocksdb::CompactRangeOptions cro;
            cro.blob_garbage_collection_policy = rocksdb::BlobGarbageCollectionPolicy::kForce;
            cro.blob_garbage_collection_age_cutoff = 1.0;
            cro.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
            s = impl_->db->CompactRange(cro, impl_->cf_kv, nullptr, nullptr);
            if (!s.ok()) return from_rocks(s, "gc compaction");
        }
        return rep;
    } catch (const std::exception& e) {
        return make_error(errc::internal, std::string("collect_garbage: ") + e.what());
    }
}

store_stats store::stats() {
    store_stats st = counters();
    try {
        auto& db = *impl_->db;
        {
            std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), impl_->cf_sessions));
            for (it->SeekToFirst(); it->Valid(); it->Next()) ++st.n_sessions;
        }
        {
            std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), impl_->cf_events));
            for (it->SeekToFirst(); it->Valid(); it->Next()) ++st.n_events;
        }
        {
            std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), impl_->cf_refs));
            for (it->SeekToFirst(); it->Valid(); it->Next())
                if (!it->key().empty() && it->key()[0] == 'B') ++st.n_refs;
        }
        {
            std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(impl::kv_ro(), impl_->cf_kv));
            for (it->SeekToFirst(); it->Valid(); it->Next()) {
                ++st.n_blocks;
                st.block_bytes += it->value().size();
                if (it->value().size() >= 12) {
                    uint32_t n;
                    std::memcpy(&n, it->value().data() + 8, 4);
                    st.block_tokens += n;
                }
            }
        }
        st.bytes_per_token = st.block_tokens ? double(st.block_bytes) / double(st.block_tokens) : 0.0;
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(impl_->opt.path, ec)) {
            const auto name = e.path().filename().string();
            if (name.ends_with(".sst") || name.ends_with(".blob") || name.ends_with(".log"))
                st.disk_bytes += e.file_size(ec);
        }
    } catch (...) {
    }
    return st;
}

store_stats store::counters() {
    std::lock_guard lk(impl_->q_mu);
    store_stats st = impl_->ctr;
    st.n_pending = impl_->queue.size() + impl_->in_flight;
    impl_->fill_lifetime(st);
    return st;
}

void store::flush() {
    impl_->drain();
    if (impl_->opt.kv_wal) return;
    // Without the WAL the blocks are only in the memtable: write them to the blob files now.
    rocksdb::FlushOptions fo;
    fo.wait = true;
    const auto s = impl_->db->Flush(fo, impl_->cf_kv);
    if (!s.ok()) std::fprintf(stderr, "mnemos store: flushing KV blocks failed: %s\n", s.ToString().c_str());
}

result<std::string> store::raw_block(const block_hash& hash) {
    std::string v;
    auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf_kv, hash_slice(hash), &v);
    if (!s.ok()) return from_rocks(s, "read block");
    return v;
}

result<std::string> store::raw_summary(const block_hash& hash) {
    std::string v;
    auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf_summaries, hash_slice(hash), &v);
    if (!s.ok()) return from_rocks(s, "read summary");
    return v;
}

uint64_t store::n_periodic_flushes() {
    std::lock_guard lk(impl_->q_mu);
    return impl_->n_periodic_flushes;
}

store::memory_use store::memory_usage() {
    memory_use m;
    auto& db = *impl_->db;
    db.GetAggregatedIntProperty(rocksdb::DB::Properties::kSizeAllMemTables, &m.memtables);
    db.GetAggregatedIntProperty(rocksdb::DB::Properties::kEstimateTableReadersMem, &m.table_readers);
    // One cache shared by every family: any family's property reports it.
    db.GetIntProperty(impl_->cf_default, rocksdb::DB::Properties::kBlockCacheUsage, &m.block_cache);
    return m;
}

status store::put_raw_block(const block_hash& hash, std::string_view value) {
    auto s = impl_->db->Put(impl_->sync_wo, impl_->cf_kv, hash_slice(hash), rocksdb::Slice(value.data(), value.size()));
    std::lock_guard lk(impl_->q_mu);
    impl_->known.erase(hash);
    return from_rocks(s, "write block");
}

}  // namespace mnemos::memory
