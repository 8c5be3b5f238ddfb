// agent/cli/model_path.h.
#include "agent/cli/model_path.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

namespace mnemos::cli {

std::string resolve_model_path(const std::string& flag_value) {
    if (!flag_value.empty()) return flag_value;
    if (const char* env = std::getenv("MNEMOS_MODEL"); env && *env) return env;
    namespace fs = std::filesystem;
    std::vector<fs::path> roots{fs::current_path() / ".." / "shared" / "models",
                                fs::current_path() / "shared" / "models"};
    char exe[4096];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        for (fs::path p = fs::path(exe).parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path())
            roots.push_back(p / ".." / "shared" / "models");
    }
    static const char* known[] = {"stories260K-f32.gguf", "smollm-bpe-r-q4_k_m.gguf", "llama-spm-r-q8_0.gguf"};
    for (const auto& r : roots)
        for (const char* k : known) {
            std::error_code ec;
            if (fs::is_regular_file(r / k, ec)) {
                const std::string p = fs::weakly_canonical(r / k, ec).string();
                std::fprintf(stderr, "mnemos: no --model or $MNEMOS_MODEL given; using %s\n", p.c_str());
                return p;
            }
        }
    return {};
}

std::shared_ptr<const engine::model> load_command_model(const char* command, const std::string& flag_value,
                                                        int* exit_code) {
    const std::string path = resolve_model_path(flag_value);
    if (path.empty()) {
        std::fprintf(stderr,
                     "mnemos %s: no model. Pass --model FILE or set MNEMOS_MODEL (the README says how to get one).\n",
                     command);
        *exit_code = 2;
        return nullptr;
    }
    auto loaded = engine::model::load(path);
    if (!loaded) {
        std::fprintf(stderr, "mnemos %s: cannot load model: %s\n", command, loaded.error().to_string().c_str());
        *exit_code = 1;
        return nullptr;
    }
    return std::shared_ptr<const engine::model>(std::move(loaded.value()));
}

}  // namespace mnemos::cli
