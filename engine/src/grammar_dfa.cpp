// Byte automata: subset construction, products, pruning, quoting, compaction. See grammar_dfa.h.
#include "engine/src/grammar_dfa.h"

#include <algorithm>
#include <deque>
#include <map>
#include <utility>

namespace mnemos::engine {

int32_t byte_nfa::add_state(bool in_char) {
    edges.emplace_back();
    eps.emplace_back();
    mid.push_back(in_char ? 1 : 0);
    return static_cast<int32_t>(edges.size()) - 1;
}

namespace {

void closure(const byte_nfa& n, std::vector<int32_t>& set, std::vector<uint8_t>& mark) {
    std::vector<int32_t> stack(set.begin(), set.end());
    for (int32_t s : set) mark[size_t(s)] = 1;
    while (!stack.empty()) {
        const int32_t s = stack.back();
        stack.pop_back();
        for (int32_t t : n.eps[size_t(s)])
            if (!mark[size_t(t)]) {
                mark[size_t(t)] = 1;
                set.push_back(t);
                stack.push_back(t);
            }
    }
    for (int32_t s : set) mark[size_t(s)] = 0;
    std::sort(set.begin(), set.end());
}

std::array<int32_t, 256> no_moves() {
    std::array<int32_t, 256> a;
    a.fill(-1);
    return a;
}

}  // namespace

bool nfa_to_dfa(const byte_nfa& n, int32_t start, int32_t accept, size_t max_states, raw_dfa& out) {
    out = raw_dfa{};
    std::vector<uint8_t> mark(n.size(), 0);
    std::map<std::vector<int32_t>, int32_t> ids;
    std::vector<std::vector<int32_t>> sets;
    const auto intern = [&](std::vector<int32_t> set) -> int32_t {
        closure(n, set, mark);
        auto it = ids.find(set);
        if (it != ids.end()) return it->second;
        const int32_t id = static_cast<int32_t>(sets.size());
        bool acc = false, bnd = false;
        for (int32_t s : set) {
            acc |= s == accept;
            bnd |= n.mid[size_t(s)] == 0;
        }
        out.next.push_back(no_moves());
        out.accept.push_back(acc);
        out.boundary.push_back(bnd);
        ids.emplace(set, id);
        sets.push_back(std::move(set));
        return id;
    };
    out.start = intern({start});
    std::vector<std::vector<int32_t>> by_byte(256);
    for (size_t di = 0; di < sets.size(); ++di) {
        if (sets.size() > max_states) return false;
        for (auto& v : by_byte) v.clear();
        for (int32_t s : sets[di])
            for (const auto& e : n.edges[size_t(s)])
                for (int b = e.lo; b <= e.hi; ++b) by_byte[size_t(b)].push_back(e.to);
        for (int b = 0; b < 256; ++b) {
            auto& v = by_byte[size_t(b)];
            if (v.empty()) continue;
            std::sort(v.begin(), v.end());
            v.erase(std::unique(v.begin(), v.end()), v.end());
            const int32_t t = intern(v);
            out.next[di][size_t(b)] = t;
        }
    }
    return sets.size() <= max_states;
}

status dfa_fold::add(raw_dfa d) {
    if (!have) {
        acc = std::move(d);
        have = true;
        return {};
    }
    raw_dfa p;
    if (!dfa_product(acc, d, op, max_states, p))
        return make_error(errc::unsupported, std::string(what) + " need too many automaton states");
    acc = std::move(p);
    return {};
}

bool dfa_product(const raw_dfa& a, const raw_dfa& b, dfa_op op, size_t max_states, raw_dfa& out) {
    out = raw_dfa{};
    std::map<std::pair<int32_t, int32_t>, int32_t> ids;
    std::vector<std::pair<int32_t, int32_t>> pairs;
    const auto intern = [&](int32_t x, int32_t y) -> int32_t {
        auto it = ids.find({x, y});
        if (it != ids.end()) return it->second;
        const bool ax = x >= 0 && a.accept[size_t(x)], by = y >= 0 && b.accept[size_t(y)];
        bool acc = false;
        if (op == dfa_op::intersect) acc = ax && by;
        if (op == dfa_op::difference) acc = ax && !by;
        if (op == dfa_op::unite) acc = ax || by;
        const int32_t id = static_cast<int32_t>(pairs.size());
        out.next.push_back(no_moves());
        out.accept.push_back(acc);
        out.boundary.push_back((x >= 0 && a.boundary[size_t(x)]) || (y >= 0 && b.boundary[size_t(y)]));
        ids.emplace(std::make_pair(x, y), id);
        pairs.emplace_back(x, y);
        return id;
    };
    out.start = intern(a.start, b.start);
    for (size_t pi = 0; pi < pairs.size(); ++pi) {
        if (pairs.size() > max_states) return false;
        const auto [x, y] = pairs[pi];
        for (int c = 0; c < 256; ++c) {
            const int32_t nx = x >= 0 ? a.next[size_t(x)][size_t(c)] : -1;
            const int32_t ny = y >= 0 ? b.next[size_t(y)][size_t(c)] : -1;
            if (nx < 0 && (op != dfa_op::unite || ny < 0)) continue;
            if (op == dfa_op::intersect && ny < 0) continue;
            const int32_t t = intern(nx, ny);
            out.next[pi][size_t(c)] = t;
        }
    }
    return pairs.size() <= max_states;
}

bool dfa_prune(raw_dfa& d) {
    const size_t n = d.size();
    std::vector<std::vector<int32_t>> rev(n);
    for (size_t s = 0; s < n; ++s)
        for (int32_t t : d.next[s])
            if (t >= 0) rev[size_t(t)].push_back(static_cast<int32_t>(s));
    std::vector<uint8_t> live(n, 0), reach(n, 0);
    std::vector<int32_t> stack;
    for (size_t s = 0; s < n; ++s)
        if (d.accept[s]) live[s] = 1, stack.push_back(static_cast<int32_t>(s));
    while (!stack.empty()) {
        const int32_t s = stack.back();
        stack.pop_back();
        for (int32_t p : rev[size_t(s)])
            if (!live[size_t(p)]) live[size_t(p)] = 1, stack.push_back(p);
    }
    if (!live[size_t(d.start)]) return false;
    reach[size_t(d.start)] = 1;
    stack.push_back(d.start);
    while (!stack.empty()) {
        const int32_t s = stack.back();
        stack.pop_back();
        for (int32_t t : d.next[size_t(s)])
            if (t >= 0 && live[size_t(t)] && !reach[size_t(t)]) reach[size_t(t)] = 1, stack.push_back(t);
    }
    std::vector<int32_t> remap(n, -1);
    raw_dfa o;
    for (size_t s = 0; s < n; ++s)
        if (reach[s]) {
            remap[s] = static_cast<int32_t>(o.next.size());
            o.next.push_back(d.next[s]);
            o.accept.push_back(d.accept[s]);
            o.boundary.push_back(d.boundary[s]);
        }
    for (auto& row : o.next)
        for (auto& t : row) t = t >= 0 ? remap[size_t(t)] : -1;
    o.start = remap[size_t(d.start)];
    d = std::move(o);
    return true;
}

raw_dfa dfa_quote(const raw_dfa& content) {
    raw_dfa o = content;
    const int32_t base = static_cast<int32_t>(o.size());
    const int32_t open = base, fin = base + 1;
    for (int i = 0; i < 2; ++i) {
        o.next.push_back(no_moves());
        o.accept.push_back(0);
        o.boundary.push_back(0);
    }
    o.next[size_t(open)]['"'] = content.start;
    for (size_t s = 0; s < content.size(); ++s) {
        if (content.accept[s]) o.next[s]['"'] = fin;
        o.accept[s] = 0;
    }
    o.accept[size_t(fin)] = 1;
    o.start = open;
    return o;
}

namespace {

// Character weight of the move s --b-->.
int32_t weight(const raw_dfa& d, size_t s, int b, bool quoted) {
    return d.boundary[s] && !(quoted && b == '"') ? 1 : 0;
}

void min_distances(const raw_dfa& d, bool quoted, std::vector<int32_t>& dist) {
    const size_t n = d.size();
    std::vector<std::vector<std::pair<int32_t, int32_t>>> rev(n);  // (pred, weight)
    for (size_t s = 0; s < n; ++s)
        for (int b = 0; b < 256; ++b)
            if (const int32_t t = d.next[s][size_t(b)]; t >= 0)
                rev[size_t(t)].emplace_back(static_cast<int32_t>(s), weight(d, s, b, quoted));
    dist.assign(n, byte_dfa::k_unbounded);
    std::deque<int32_t> q;
    for (size_t s = 0; s < n; ++s)
        if (d.accept[s]) dist[s] = 0, q.push_back(static_cast<int32_t>(s));
    while (!q.empty()) {
        const int32_t t = q.front();
        q.pop_front();
        for (const auto& [p, w] : rev[size_t(t)])
            if (dist[size_t(t)] + w < dist[size_t(p)]) {
                dist[size_t(p)] = dist[size_t(t)] + w;
                w ? q.push_back(p) : q.push_front(p);
            }
    }
}

// Longest character count to acceptance; k_unbounded for states that reach a cycle (Kahn's order on
// the reversed graph: a state is settled once all its successors are).
void max_distances(const raw_dfa& d, bool quoted, std::vector<int32_t>& dist) {
    const size_t n = d.size();
    std::vector<std::vector<std::pair<int32_t, int32_t>>> rev(n);
    std::vector<int32_t> out_deg(n, 0);
    for (size_t s = 0; s < n; ++s)
        for (int b = 0; b < 256; ++b)
            if (const int32_t t = d.next[s][size_t(b)]; t >= 0) {
                rev[size_t(t)].emplace_back(static_cast<int32_t>(s), weight(d, s, b, quoted));
                out_deg[s]++;
            }
    dist.assign(n, -1);
    std::vector<int32_t> q;
    for (size_t s = 0; s < n; ++s) {
        if (d.accept[s]) dist[s] = 0;
        if (out_deg[s] == 0) q.push_back(static_cast<int32_t>(s));
    }
    std::vector<uint8_t> settled(n, 0);
    while (!q.empty()) {
        const int32_t t = q.back();
        q.pop_back();
        settled[size_t(t)] = 1;
        for (const auto& [p, w] : rev[size_t(t)]) {
            if (dist[size_t(t)] >= 0) dist[size_t(p)] = std::max(dist[size_t(p)], dist[size_t(t)] + w);
            if (--out_deg[size_t(p)] == 0) q.push_back(p);
        }
    }
    for (size_t s = 0; s < n; ++s)
        if (!settled[s]) dist[s] = byte_dfa::k_unbounded;
}

}  // namespace

byte_dfa dfa_finalize(const raw_dfa& d, bool quoted) {
    byte_dfa o;
    o.quoted = quoted;
    o.start = d.start;
    // Byte classes: bytes whose columns are equal share a class.
    std::map<std::vector<int32_t>, uint8_t> cols;
    std::vector<std::vector<int32_t>> col_of(256);
    for (int b = 0; b < 256; ++b) {
        std::vector<int32_t> col(d.size());
        for (size_t s = 0; s < d.size(); ++s) col[s] = d.next[s][size_t(b)];
        auto [it, fresh] = cols.emplace(col, static_cast<uint8_t>(cols.size()));
        o.cls[size_t(b)] = it->second;
        if (fresh) col_of[it->second] = std::move(col);
    }
    o.n_cls = static_cast<int32_t>(cols.size());
    o.next.assign(d.size() * size_t(o.n_cls), -1);
    for (int32_t c = 0; c < o.n_cls; ++c)
        for (size_t s = 0; s < d.size(); ++s) o.next[s * size_t(o.n_cls) + size_t(c)] = col_of[size_t(c)][s];
    o.accept = d.accept;
    o.counts.resize(d.size());
    o.final_only.resize(d.size());
    for (size_t s = 0; s < d.size(); ++s) {
        o.counts[s] = d.boundary[s] && !(quoted && int32_t(s) == d.start);
        bool moves = false;
        for (int32_t t : d.next[s]) moves |= t >= 0;
        o.final_only[s] = d.accept[s] && !moves;
    }
    min_distances(d, quoted, o.min_chars);
    max_distances(d, quoted, o.max_chars);
    return o;
}

}  // namespace mnemos::engine
