#pragma once
// Header-only generator of an analytic "associative-recall" model: a real
// llama-architecture GGUF file (f32 weights, the tiny SPM vocabulary of
// tiny_model.h) whose weights are constructed, not trained or random, so that
// greedy decoding after a history and a query key word answers the value word
// that followed that key word in the history, however far back. It is the
// fixture for long-context attention tests (sparse attention over pages chosen
// by per-page key summaries, histories of 32k..1M tokens): the answer is right
// only if the attention of the last layer(s) reaches the one position that
// holds it.
//
// Usage:
//   recall_model_spec spec;                 // n_layer 2: one hop, 3: two hops
//   recall_roles roles;
//   write_recall_model(path, spec, &roles);
//   auto h = make_recall_history(roles, 16384, {{key, value, pos}, ...}, seed);
//   prompt = h + [roles.keys[key]]  ->  greedy next token == roles.values[value]
//   a key not in the history        ->  greedy next token == roles.no_answer (<unk>)
//
// ---------------------------------------------------------------------------
// Tokens and roles
// ---------------------------------------------------------------------------
// n_keys key words, n_keys value words and n_fillers filler words are distinct
// token ids >= 3 of the SPM vocabulary (byte tokens and merged pieces), drawn
// by `seed` (a Fisher-Yates shuffle on mt19937_64, the same on every standard
// library). Everything else (<unk>, </s>, unused pieces) behaves like a filler.
// Histories are BOS (id 1), then fillers, with needles written over them: a
// needle is "key_word value_word" at positions (pos, pos + 1).
//
// ---------------------------------------------------------------------------
// Residual stream (E = 256; dims used, k = key/value index < 32)
// ---------------------------------------------------------------------------
//   TOKKEY+k  [0, 32)    the token is key word k            (embedding)
//   TOKVAL+k  [32, 64)   the token is value word k          (embedding)
//   PREV+k    [64, 96)   the previous token is key word k   (layer 0)
//   HOP+k     [96, 128)  two-hop: the key word that followed the query key (layer 1 of 3)
//   ANSWER+k  [128, 160) the recalled value word            (last layer)
//   OTHER     160        the token is neither key nor value nor BOS (embedding)
//   BOSD      161        the token is BOS (embedding)
//   PREV_OTHER 162       the previous token is not a key word (layer 0)
//   CONST     163        1 for every token (c = 1)
// Every embedding is one identity one-hot (TOKKEY, TOKVAL, OTHER or BOSD) plus
// CONST, all of amplitude 1, so every token has the same norm and rmsnorm
// multiplies by exactly the same factor at every position: 16/sqrt(2) = 11.3
// at layer 0. Layer 0 adds exactly one more unit one-hot (PREV or
// PREV_OTHER), so every position has norm sqrt(3) (factor 9.24) after it;
// answering/hop writes add one more unit at the positions that recall.
// Attention scores below are therefore exact numbers, not estimates; they are
// computed from these factors (rms_eps = 1e-5 included) when writing weights.
// The FFNs are all zero (n_ff = 32; silu(0) * 0 = 0), norms weight 1.
//
// ---------------------------------------------------------------------------
// Layer 0, query head 0 (KV head 0): previous-token head
// ---------------------------------------------------------------------------
// q and k come only from CONST. In pair p (head dims 2p, 2p+1) for p = 0..15:
// k = (1, 0) and q = 8 s (cos w_p, -sin w_p) (weights 1/n and 8 s/n on CONST,
// n the rmsnorm factor), with w_p = base^(-2p/64). The engine's "normal" RoPE rotates pair
// (a, b) by +pos*w_p (a' = a cos - b sin, b' = a sin + b cos), so after RoPE
// q_i . k_j = sum_p (8 s) cos(w_p (d - 1)), d = i - j, and with the 1/sqrt(64)
// scale: score(d) = s * sum_p cos(w_p (d - 1)), maximal (16 s) at d = 1.
// s = prev_score_per_pair = 36. Gap to the runner-up: 36 * sum_p (1 - cos w_p)
// = 36 * 0.5665 = 20.4 at d = 0 and d = 2 (weight ratio e^20); d = 3 is 36 *
// 1.83 below. Why 16 pairs and not the 5 fastest: with base 1e12 pairs 0..4
// alone come back close to phase at d = 224719 (gap 0.035, i.e. 1.3 at this
// s: the head would split its attention at that distance in a long history);
// with pairs 0..15 the smallest gap over every d in [0, 2^20] other than 1 is
// the one at d = 0, 2 (the slow pairs decorrelate far distances, the fast
// ones separate the near ones; the [recall] test "keep their scores up to a
// million tokens" checks it against every position before 2^20).
// v copies the identity: head dim k <- TOKKEY+k, head dim 32 <- TOKVAL, OTHER
// and BOSD; wo writes them to PREV+k and PREV_OTHER. BOS (position 0) can only
// attend to itself and gets PREV_OTHER. Query heads 1..3: q = 0 and zero wo
// columns (head 1 shares KV head 0, whose v is not zero); KV head 1 is zero.
//
// ---------------------------------------------------------------------------
// Induction layers
// ---------------------------------------------------------------------------
// Key slot k (k < 32) lives in KV head g = k / 16 (query head 2g; query heads
// 1 and 3 have q = 0 and zero wo columns), in the EVEN dim of pair
// 31 - (k % 16): the slowest-rotating pairs 16..31, one dim per key, so that
// RoPE only scales a match by cos(w_p d) and never mixes two keys (a key
// spread over both dims of a pair would leak sin(w_p d) of its score into its
// partner). w_31 = 2.4e-12, w_20 = 3.2e-8, w_16 = 1e-6 rad/token with base
// 1e12: a match loses nothing below 100k tokens of distance; at 2^20 (1.05M)
// the key slots on pair 16 (k = 15, 31) keep cos(1.05) = 0.50 of their score
// (still 20 above the sink, see below), pair 17 (k = 14, 30) 0.90, pairs >= 18
// more than 0.98.
//   q (query head 2g)   = B * [source one-hot of the query position] in the key slots
//   k (KV head g)       = PREV one-hot of the attended position in the key slots
//   score(match) = B = induction_score = 100, score(no match) = 0.
// Attention sink: k has 1 in the ODD dim of pair 31 (head dim 63) at BOS only,
// q has a constant there: score(BOS) = S0 = sink_score = 30 for every query.
// BOS's v is zero, so a query without a match attends to BOS (weight > 1 -
// 1e6 e^-30 against a million unmatched positions) and adds nothing, instead
// of smearing the average of the whole history into the residual. A match
// beats the sink by B - S0 = 70 (20 at 2^20 for the pair-16 slots, see above;
// the [recall] test "keep their scores up to a million tokens" recomputes
// these scores from the written weights with the engine's RoPE angles).
// Sparse attention that drops page 0 loses the sink: matches still win
// (e^100 against the rest), but a query without a match then averages.
//   v = one-hot of the attended position (TOKVAL or TOKKEY), wo -> destination.
//
// n_layer = 2 (one hop): layer 1 is an induction head with query source
// TOKKEY, v = TOKVAL, destination ANSWER. The query key word K_a matches the
// position whose previous token was K_a, i.e. the value word that followed it,
// and copies that value word into ANSWER.
//
// n_layer = 3 (two hops, history "... A B ... B V ...", query A, answer V):
// layer 1: query source TOKKEY, v = TOKKEY, destination HOP: A matches the B
// after it and writes B into HOP. Layer 2: query source HOP, v = TOKVAL,
// destination ANSWER. Both the V after "B" and the token x after "A B" have
// PREV = B; so that the answer is not split 50/50 between V and x (a filler,
// v = 0), layer 2 adds a value-word bonus Sv = value_bonus = 15 (ODD dim of
// pair 30, head dim 61: k = 1 at every value word, q constant): V scores
// B + Sv, x scores B, other value words Sv, the sink S0 (S0 - Sv = 15 keeps
// unmatched value words off). The queries' rmsnorm factor in layer 2 is the
// one of a position that has HOP (16/sqrt(4) = 8), so the scores above hold at
// the query.
//
// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------
// output.weight (untied): logit(value word k) = beta * ANSWER+k after the
// final rmsnorm, beta = answer_weight = 2.5: 2.5 * 8 = 20 for a recalled value
// (one hop; 2.5 * 16/sqrt(5) = 17.9 with two hops). logit(<unk>) = CONST / 8
// (about 1): when nothing is recalled the answer is <unk> (roles.no_answer)
// by a margin of about 1, not by tie-breaking. Every other logit is 0.
//
// What an attention scheme must keep for the answer to be right: layer 0
// needs position i - 1 (a local window) at every position; the induction
// layer(s) need the position of the needle's value word, whose k carries the
// key's slot (the token after the key word: on the next page when the key word
// ends a page; for two hops, the B after "A" in layer 1 and the V after "B" in
// the last layer) and, for a clean <unk> when there is no match, BOS (page 0).
// In the induction layers k is the PREV one-hot, so a per-page summary of the
// keys (max or sum over the page) shows the slot of every key word that the
// page holds the successor of, and nothing else but the sink dim on page 0
// (and the value-word dim in the two-hop last layer).
//
// Numbers: KV is stored in f16 by the engine; k and v entries are <= 1 in
// magnitude (error < 5e-4), so scores move by well under 1.
//
// ---------------------------------------------------------------------------
// Query offset (a chat prompt: query_offset = D > 0, n_layer 2 only)
// ---------------------------------------------------------------------------
// In a chat the question ends the user's message and the template's markup
// follows it ("...<key><|im_end|>\n<|im_start|>assistant\n"), so the last
// token is markup, not the key. With query_offset = D the query key is the
// token D positions before the last:
//   QKEY+k    [164, 196)  the token D positions back is key word k (layer 0)
//   QOTHER    196         ... is not a key word (layer 0)
// Layer 0, query head 1 (sharing KV head 0, whose v is the identity above) is
// the previous-token head moved to distance D: q = 8 s (cos w_p D, -sin w_p D),
// score(d) = s * sum_p cos(w_p (d - D)), maximal at d = D with the same gaps
// as at d = 1 (it only shifts the distance); wo writes to QKEY+k / QOTHER.
// Positions before D attend to BOS and get QOTHER. Every position then has 4
// unit one-hots after layer 0 (norm factor 8). The induction layer reads its
// query from QKEY instead of TOKKEY and has the value-word bonus Sv of the
// two-hop last layer: the markup token right after the key in the question
// also has PREV = key (score B, v = 0 unless it is a value word), the value
// word of the needle scores B + Sv and takes the answer.
// The default D = 0 writes exactly the weights described above.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tests/support/gguf_writer.h"
#include "tests/support/tiny_model.h"

namespace mnemos::test {

struct recall_model_spec {
    int n_layer = 2;               // 2: one hop; 3: two hops
    int n_keys = 32;               // key words = value words, 1..32
    int n_fillers = 64;            // 1..(n_vocab - 3 - 2 n_keys)
    uint64_t seed = 1;             // which token ids get which role
    float rope_freq_base = 1e12f;  // see "Induction layers" before changing it
    int context_length = 4096;     // <arch>.context_length (engine_options::n_ctx may exceed it)
    int query_offset = 0;          // D: the query key is D tokens before the last (see "Query offset")
    // Scores after the 1/sqrt(head_dim) scale (see the comments above).
    float prev_score_per_pair = 36;  // previous-token head: s per pair, 16 pairs
    float induction_score = 100;     // B: query key one-hot . PREV one-hot
    float sink_score = 30;           // S0: every query . BOS
    float value_bonus = 15;          // Sv: two-hop last layer, every query . any value word
    float answer_weight = 2.5f;      // beta: output weight of ANSWER+k for value word k
    float no_answer_logit = 1;       // logit(<unk>) at a residual norm of sqrt(4)
};

struct recall_roles {
    std::vector<int32_t> keys;     // keys[k]: token id of key word k
    std::vector<int32_t> values;   // values[k]: token id of value word k
    std::vector<int32_t> fillers;  // filler words (never keys or values)
    int32_t bos = 1;               // <s>, position 0 of every history
    int32_t no_answer = 0;         // <unk>: the answer when nothing is recalled
    int n_layer = 2;
    int32_t n_vocab = 0;
};

// A one-hop needle: key word `key` at `pos`, value word `value` at pos + 1.
struct recall_needle {
    int key = 0;
    int value = 0;
    int64_t pos = 1;
};

// A two-hop chain: "keys[first] keys[second]" at pos_first, "keys[second]
// values[value]" at pos_second. Query keys[first] -> values[value] (n_layer 3).
struct recall_chain {
    int first = 0;
    int second = 1;
    int value = 0;
    int64_t pos_first = 1;
    int64_t pos_second = 100;
};

namespace recall_detail {

constexpr int kSlots = 32;  // key slots in the residual stream and in the induction heads
constexpr int TOKKEY = 0, TOKVAL = 32, PREV = 64, HOP = 96, ANSWER = 128;
constexpr int OTHER = 160, BOSD = 161, PREV_OTHER = 162, CONST = 163, QKEY = 164, QOTHER = 196;
constexpr int E = 256, N_HEAD = 4, N_HEAD_KV = 2, HEAD_DIM = 64, N_FF = 32;
constexpr float RMS_EPS = 1e-5f;

// rmsnorm factor of a residual made of `m` unit one-hots.
inline double norm_factor(int m) { return 1.0 / std::sqrt(static_cast<double>(m) / E + RMS_EPS); }

// Head dim of key slot k inside its KV head (even dim of pair 31 - k % 16), and its KV head.
inline int slot_dim(int k) { return 2 * (31 - k % 16); }
inline int slot_head(int k) { return k / 16; }
constexpr int SINK_DIM = 63;   // odd dim of pair 31
constexpr int VALUE_DIM = 61;  // odd dim of pair 30

// Row-major [rows][cols] f32 matrix written as a GGUF tensor [ne0 = cols, ne1 = rows].
struct matrix {
    int64_t rows, cols;
    std::vector<float> a;
    matrix(int64_t r, int64_t c) : rows(r), cols(c), a(static_cast<size_t>(r * c), 0.0f) {}
    float& at(int64_t r, int64_t c) { return a[static_cast<size_t>(r * cols + c)]; }
};

// Deterministic shuffle (std::shuffle differs between standard libraries).
inline void shuffle(std::vector<int32_t>& v, uint64_t seed) {
    std::mt19937_64 g(seed);
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(g() % i)]);
}

// An induction head in layer `il` weights: q from `q_src` slots, k from PREV, v from `v_src`, out to `dst`.
struct induction {
    int q_src, v_src, dst;
    bool value_bonus;
    double n_q, n_k;  // rmsnorm factors at the query and the attended positions
};

inline void write_induction(const induction& ind, const recall_model_spec& s, int n_slots, matrix& wq, matrix& wk,
                            matrix& wv, matrix& wo) {
    const double scale = std::sqrt(static_cast<double>(HEAD_DIM));  // undoes the 1/sqrt(head_dim) of the scores
    for (int g = 0; g < N_HEAD_KV; ++g) {
        const int qh = 2 * g;  // the query head of KV head g that is used
        const int64_t qrow = static_cast<int64_t>(qh) * HEAD_DIM, krow = static_cast<int64_t>(g) * HEAD_DIM;
        // Sink: every query . BOS = S0.
        wq.at(qrow + SINK_DIM, CONST) = static_cast<float>(scale * s.sink_score / ind.n_q);
        wk.at(krow + SINK_DIM, BOSD) = static_cast<float>(1.0 / ind.n_k);
        if (ind.value_bonus) {
            wq.at(qrow + VALUE_DIM, CONST) = static_cast<float>(scale * s.value_bonus / ind.n_q);
            for (int k = 0; k < kSlots; ++k) wk.at(krow + VALUE_DIM, TOKVAL + k) = static_cast<float>(1.0 / ind.n_k);
        }
        // v: the source one-hot in head dims 0..31, written to dst by query head qh.
        for (int k = 0; k < kSlots; ++k) {
            wv.at(krow + k, ind.v_src + k) = static_cast<float>(1.0 / ind.n_k);
            wo.at(ind.dst + k, qrow + k) = 1.0f;
        }
    }
    for (int k = 0; k < n_slots; ++k) {
        const int g = slot_head(k), d = slot_dim(k);
        wq.at(static_cast<int64_t>(2 * g) * HEAD_DIM + d, ind.q_src + k) =
            static_cast<float>(scale * s.induction_score / ind.n_q);
        wk.at(static_cast<int64_t>(g) * HEAD_DIM + d, PREV + k) = static_cast<float>(1.0 / ind.n_k);
    }
}

}  // namespace recall_detail

// The token roles of a spec for a vocabulary of n_vocab tokens (what write_recall_model draws), without writing
// the model: keys, values and fillers from the ids >= 3, shuffled by spec.seed. Empty keys when they do not fit.
inline recall_roles recall_roles_of(const recall_model_spec& s, int32_t n_vocab) {
    recall_roles roles;
    roles.n_layer = s.n_layer;
    roles.n_vocab = n_vocab;
    if (s.n_keys < 1 || s.n_fillers < 1 || 3 + 2 * s.n_keys + s.n_fillers > n_vocab) return roles;
    std::vector<int32_t> ids;
    for (int32_t t = 3; t < n_vocab; ++t) ids.push_back(t);
    recall_detail::shuffle(ids, s.seed);
    size_t i = 0;
    for (int k = 0; k < s.n_keys; ++k) roles.keys.push_back(ids[i++]);
    for (int k = 0; k < s.n_keys; ++k) roles.values.push_back(ids[i++]);
    for (int k = 0; k < s.n_fillers; ++k) roles.fillers.push_back(ids[i++]);
    return roles;
}

// Writes the model to `path` and its token roles to `*out` (may be nullptr).
// False when the spec is out of range or the file cannot be written.
inline bool write_recall_model(const std::string& path, const recall_model_spec& s, recall_roles* out) {
    namespace d = recall_detail;
    namespace td = tiny_model_detail;
    if (s.n_layer != 2 && s.n_layer != 3) return false;
    if (s.n_keys < 1 || s.n_keys > d::kSlots || s.n_fillers < 1 || s.context_length < 1) return false;
    if (!(s.rope_freq_base > 1.0f)) return false;
    if (s.query_offset < 0 || (s.query_offset > 0 && s.n_layer != 2)) return false;
    const td::vocab voc = td::make_spm_vocab();
    const int32_t n_vocab = static_cast<int32_t>(voc.tokens.size());
    if (3 + 2 * s.n_keys + s.n_fillers > n_vocab) return false;

    recall_roles roles = recall_roles_of(s, n_vocab);

    const std::string a = "llama";
    gguf_writer w;
    w.add_string("general.architecture", a);
    w.add_string("general.name", "recall-" + std::to_string(s.n_layer) + "-layer");
    w.add_u32("general.alignment", 32);
    w.add_u32("general.file_type", 0);
    w.add_u32(a + ".vocab_size", static_cast<uint32_t>(n_vocab));
    w.add_u32(a + ".context_length", static_cast<uint32_t>(s.context_length));
    w.add_u32(a + ".embedding_length", d::E);
    w.add_u32(a + ".feed_forward_length", d::N_FF);
    w.add_u32(a + ".block_count", static_cast<uint32_t>(s.n_layer));
    w.add_u32(a + ".attention.head_count", d::N_HEAD);
    w.add_u32(a + ".attention.head_count_kv", d::N_HEAD_KV);
    w.add_u32(a + ".attention.key_length", d::HEAD_DIM);
    w.add_u32(a + ".attention.value_length", d::HEAD_DIM);
    w.add_u32(a + ".rope.dimension_count", d::HEAD_DIM);
    w.add_f32(a + ".rope.freq_base", s.rope_freq_base);
    w.add_f32(a + ".attention.layer_norm_rms_epsilon", d::RMS_EPS);
    tiny_model_detail::add_spm_tokenizer(w, voc);

    auto add = [&](const std::string& name, const d::matrix& m) { w.add_tensor_f32(name, {m.cols, m.rows}, m.a); };
    const std::vector<float> ones(d::E, 1.0f);

    // Embeddings: one identity one-hot + CONST.
    d::matrix embd(n_vocab, d::E);
    for (int32_t t = 0; t < n_vocab; ++t) {
        embd.at(t, d::CONST) = 1;
        embd.at(t, t == roles.bos ? d::BOSD : d::OTHER) = 1;
    }
    for (int k = 0; k < s.n_keys; ++k) {
        embd.at(roles.keys[k], d::OTHER) = 0;
        embd.at(roles.keys[k], d::TOKKEY + k) = 1;
        embd.at(roles.values[k], d::OTHER) = 0;
        embd.at(roles.values[k], d::TOKVAL + k) = 1;
    }
    add("token_embd.weight", embd);

    const int64_t Q = static_cast<int64_t>(d::N_HEAD) * d::HEAD_DIM,
                  KV = static_cast<int64_t>(d::N_HEAD_KV) * d::HEAD_DIM;
    const double n2 = d::norm_factor(2), n3 = d::norm_factor(3), n4 = d::norm_factor(4);
    for (int il = 0; il < s.n_layer; ++il) {
        d::matrix wq(Q, d::E), wk(KV, d::E), wv(KV, d::E), wo(d::E, Q);
        if (il == 0) {
            // Previous-token head (query head 0, KV head 0): score(d) = s * sum_p cos(w_p (d - 1)).
            const double scale = std::sqrt(static_cast<double>(d::HEAD_DIM));
            for (int p = 0; p < 16; ++p) {
                const double wp = std::pow(static_cast<double>(s.rope_freq_base), -2.0 * p / d::HEAD_DIM);
                const double amp = scale * s.prev_score_per_pair / n2;
                wq.at(2 * p, d::CONST) = static_cast<float>(amp * std::cos(wp));
                wq.at(2 * p + 1, d::CONST) = static_cast<float>(-amp * std::sin(wp));
                wk.at(2 * p, d::CONST) = static_cast<float>(1.0 / n2);
            }
            for (int k = 0; k < d::kSlots; ++k) {
                wv.at(k, d::TOKKEY + k) = static_cast<float>(1.0 / n2);
                wv.at(32, d::TOKVAL + k) = static_cast<float>(1.0 / n2);
                wo.at(d::PREV + k, k) = 1;
            }
            wv.at(32, d::OTHER) = static_cast<float>(1.0 / n2);
            wv.at(32, d::BOSD) = static_cast<float>(1.0 / n2);
            wo.at(d::PREV_OTHER, 32) = 1;
            if (s.query_offset > 0) {
                // Query head 1 (KV head 0): the same head at distance D, written to QKEY / QOTHER.
                const double dq = s.query_offset;
                for (int p = 0; p < 16; ++p) {
                    const double wp = std::pow(static_cast<double>(s.rope_freq_base), -2.0 * p / d::HEAD_DIM);
                    const double amp = scale * s.prev_score_per_pair / n2;
                    wq.at(d::HEAD_DIM + 2 * p, d::CONST) = static_cast<float>(amp * std::cos(wp * dq));
                    wq.at(d::HEAD_DIM + 2 * p + 1, d::CONST) = static_cast<float>(-amp * std::sin(wp * dq));
                }
                for (int k = 0; k < d::kSlots; ++k) wo.at(d::QKEY + k, d::HEAD_DIM + k) = 1;
                wo.at(d::QOTHER, d::HEAD_DIM + 32) = 1;
            }
        } else if (s.query_offset > 0) {
            d::write_induction({d::QKEY, d::TOKVAL, d::ANSWER, true, n4, n4}, s, s.n_keys, wq, wk, wv, wo);
        } else if (s.n_layer == 2) {
            d::write_induction({d::TOKKEY, d::TOKVAL, d::ANSWER, false, n3, n3}, s, s.n_keys, wq, wk, wv, wo);
        } else if (il == 1) {
            d::write_induction({d::TOKKEY, d::TOKKEY, d::HOP, false, n3, n3}, s, s.n_keys, wq, wk, wv, wo);
        } else {
            d::write_induction({d::HOP, d::TOKVAL, d::ANSWER, true, n4, n3}, s, s.n_keys, wq, wk, wv, wo);
        }
        const std::string p = "blk." + std::to_string(il) + ".";
        w.add_tensor_f32(p + "attn_norm.weight", {d::E}, ones);
        add(p + "attn_q.weight", wq);
        add(p + "attn_k.weight", wk);
        add(p + "attn_v.weight", wv);
        add(p + "attn_output.weight", wo);
        w.add_tensor_f32(p + "ffn_norm.weight", {d::E}, ones);
        add(p + "ffn_gate.weight", d::matrix(d::N_FF, d::E));
        add(p + "ffn_up.weight", d::matrix(d::N_FF, d::E));
        add(p + "ffn_down.weight", d::matrix(d::E, d::N_FF));
    }
    w.add_tensor_f32("output_norm.weight", {d::E}, ones);
    d::matrix outw(n_vocab, d::E);
    for (int k = 0; k < s.n_keys; ++k) outw.at(roles.values[k], d::ANSWER + k) = s.answer_weight;
    outw.at(roles.no_answer, d::CONST) = static_cast<float>(s.no_answer_logit / n4);
    add("output.weight", outw);

    if (!w.write(path)) return false;
    if (out != nullptr) *out = std::move(roles);
    return true;
}

namespace recall_detail {

// BOS then random fillers (mt19937_64 modulo: the same on every standard library).
inline std::vector<int32_t> filler_history(const recall_roles& r, int64_t n_tokens, uint64_t seed) {
    std::vector<int32_t> h(static_cast<size_t>(n_tokens));
    std::mt19937_64 g(seed);
    h[0] = r.bos;
    for (int64_t i = 1; i < n_tokens; ++i) h[static_cast<size_t>(i)] = r.fillers[g() % r.fillers.size()];
    return h;
}

// Writes `tok` at `pos` unless another needle put a different token there; false on a conflict or out of range.
inline bool place(std::vector<int32_t>& h, std::vector<bool>& used, int64_t pos, int32_t tok) {
    if (pos < 1 || pos >= static_cast<int64_t>(h.size())) return false;
    const size_t i = static_cast<size_t>(pos);
    if (used[i] && h[i] != tok) return false;
    h[i] = tok;
    used[i] = true;
    return true;
}

}  // namespace recall_detail

// A history of n_tokens: BOS, random fillers, and the needles. Empty when a
// needle is out of range (pos in [1, n_tokens - 2]), two needles collide, a
// key is used twice or an index is outside the roles.
inline std::vector<int32_t> make_recall_history(const recall_roles& r, int64_t n_tokens,
                                                const std::vector<recall_needle>& needles, uint64_t seed) {
    if (n_tokens < 3 || r.fillers.empty()) return {};
    std::vector<int32_t> h = recall_detail::filler_history(r, n_tokens, seed);
    std::vector<bool> used(h.size(), false);
    std::vector<bool> key_used(r.keys.size(), false);
    const int n_keys = static_cast<int>(r.keys.size());
    for (const recall_needle& n : needles) {
        if (n.key < 0 || n.key >= n_keys || n.value < 0 || n.value >= n_keys || key_used[n.key]) return {};
        key_used[n.key] = true;
        if (!recall_detail::place(h, used, n.pos, r.keys[n.key]) ||
            !recall_detail::place(h, used, n.pos + 1, r.values[n.value]))
            return {};
    }
    return h;
}

// A two-hop history (for n_layer 3): BOS, random fillers, and per chain
// "keys[first] keys[second]" at pos_first and "keys[second] values[value]" at
// pos_second (either order; they may share the middle token). Empty on a
// collision, out-of-range position or index, first == second, or a key used
// in more than one chain.
inline std::vector<int32_t> make_two_hop_history(const recall_roles& r, int64_t n_tokens,
                                                 const std::vector<recall_chain>& chains, uint64_t seed) {
    if (n_tokens < 3 || r.fillers.empty()) return {};
    std::vector<int32_t> h = recall_detail::filler_history(r, n_tokens, seed);
    std::vector<bool> used(h.size(), false);
    std::vector<bool> key_used(r.keys.size(), false);
    const int n_keys = static_cast<int>(r.keys.size());
    for (const recall_chain& c : chains) {
        if (c.first < 0 || c.first >= n_keys || c.second < 0 || c.second >= n_keys || c.value < 0 ||
            c.value >= n_keys || c.first == c.second || key_used[c.first] || key_used[c.second])
            return {};
        key_used[c.first] = key_used[c.second] = true;
        if (!recall_detail::place(h, used, c.pos_first, r.keys[c.first]) ||
            !recall_detail::place(h, used, c.pos_first + 1, r.keys[c.second]) ||
            !recall_detail::place(h, used, c.pos_second, r.keys[c.second]) ||
            !recall_detail::place(h, used, c.pos_second + 1, r.values[c.value]))
            return {};
    }
    return h;
}

}  // namespace mnemos::test
