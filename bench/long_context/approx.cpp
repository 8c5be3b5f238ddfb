// bench_long_context part 3: full vs sparse attention on a real model over real text.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/long_context/bench_long_context.h"

namespace mnemos::bench_lc {

// The text of every string in the scenario files (scripts, personas, clues), in file order.
std::string scenario_text() {
    std::string all;
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(MNEMOS_SCENARIOS_DIR))
        if (e.path().extension() == ".json" && e.path().filename() != "scenario.schema.json") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        std::ifstream in(f);
        std::stringstream ss;
        ss << in.rdbuf();
        const std::string s = ss.str();
        // Crude but enough: the contents of quoted strings longer than 40 bytes (prose, not keys).
        for (size_t i = 0; (i = s.find('"', i)) != std::string::npos;) {
            size_t j = i + 1;
            while (j < s.size() && s[j] != '"') j += s[j] == '\\' ? 2 : 1;
            if (j - i > 40) all += s.substr(i + 1, j - i - 1) + "\n";
            i = j + 1;
        }
    }
    return all;
}

std::vector<std::vector<float>> last_logits(std::shared_ptr<const model> m, const engine_options& eo,
                                            const std::vector<token_id>& prompt, int32_t n_last) {
    auto eng = make_engine(std::move(m), eo);
    // The history without its last positions first (no logits), so that the run with logits reuses it.
    run(*eng, std::vector<token_id>(prompt.begin(), prompt.end() - n_last - 16), 0);
    std::vector<std::vector<float>> out;
    request r;
    r.prompt = prompt;
    r.max_tokens = 0;
    const int64_t first = int64_t(prompt.size()) - n_last;
    r.on_logits = [&](int64_t pos, std::span<const float> lg) {
        if (pos >= first) out.emplace_back(lg.begin(), lg.end());
    };
    eng->submit(std::move(r));
    eng->run_until_idle();
    return out;
}

// Top-1 agreement and mean KL(ref || got) over the positions both have.
void score_against(const std::vector<std::vector<float>>& ref, const std::vector<std::vector<float>>& got,
                   approx_row& ar) {
    const size_t n = std::min(ref.size(), got.size());
    for (size_t p = 0; p < n; ++p) {
        const auto& a = ref[p];
        const auto& b = got[p];
        ar.top1 +=
            std::max_element(a.begin(), a.end()) == a.begin() + (std::max_element(b.begin(), b.end()) - b.begin());
        const float ma = *std::max_element(a.begin(), a.end()), mb = *std::max_element(b.begin(), b.end());
        double za = 0, zb = 0;
        for (size_t i = 0; i < a.size(); ++i) za += std::exp(double(a[i] - ma)), zb += std::exp(double(b[i] - mb));
        for (size_t i = 0; i < a.size(); ++i) {
            const double lpa = double(a[i] - ma) - std::log(za), lpb = double(b[i] - mb) - std::log(zb);
            ar.kl += std::exp(lpa) * (lpa - lpb);
        }
    }
    ar.top1 /= double(std::max<size_t>(1, n));
    ar.kl /= double(std::max<size_t>(1, n));
}

std::vector<approx_row> approximation(const bench_options& o) {
    auto m = load_or_die(o.approx_model);
    const std::string text = scenario_text();
    std::vector<token_id> toks = m->tok().encode(text, m->tok().add_bos_default(), false);
    while (int64_t(toks.size()) < o.approx_length) toks.insert(toks.end(), toks.begin() + 1, toks.end());
    toks.resize(size_t(o.approx_length));
    engine_options full;
    full.n_threads = o.n_threads;
    full.attention.mode = attention_mode::full;
    full.n_ctx = int32_t(o.approx_length + 64);
    const auto ref = last_logits(m, full, toks, o.approx_positions);
    std::vector<approx_row> rows;
    for (int div : {0, 8, 4, 2}) {  // 0: the defaults (64 sinks, 1024 window, 32 pages: 1600 tokens)
        for (bool shared : {false, true}) {
            engine_options sp = full;
            sp.attention.mode = attention_mode::sparse;
            const int32_t budget = div ? int32_t(o.approx_length / div) : attention_options{}.budget(16);
            if (div) {
                sp.attention.n_sink = 64;
                sp.attention.n_window = budget / 2;
                sp.attention.n_pages = (budget - 64 - budget / 2) / 16;
            }
            sp.attention.shared_selection = shared;
            const auto got = last_logits(m, sp, toks, o.approx_positions);
            approx_row ar;
            ar.budget = budget;
            ar.shared = shared;
            score_against(ref, got, ar);
            rows.push_back(ar);
        }
    }
    return rows;
}

}  // namespace mnemos::bench_lc
