// mnemos info: print what a GGUF model file holds.
#include <cstdio>
#include <string>

#include "agent/cli/commands.h"
#include "engine/model.h"

namespace mnemos::cli {

int cmd_info(int argc, char** argv) {
    std::string path;
    bool tensors = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            std::printf(
                "usage: mnemos info [--model FILE] [--tensors]\n\n"
                "Loads a GGUF model and prints its hyper-parameters, tokenizer and chat template;\n"
                "--tensors also lists every tensor. Exit code 1 and the reason when the file is invalid.\n");
            return 0;
        } else if ((a == "--model" || a == "-m") && i + 1 < argc) {
            path = argv[++i];
        } else if (a == "--tensors") {
            tensors = true;
        } else {
            std::fprintf(stderr, "mnemos info: unknown option '%s' (see --help)\n", a.c_str());
            return 2;
        }
    }
    path = resolve_model_path(path);
    if (path.empty()) {
        std::fprintf(stderr, "mnemos info: no model (--model FILE or MNEMOS_MODEL)\n");
        return 2;
    }
    auto m = engine::model::load(path);
    if (!m) {
        std::fprintf(stderr, "mnemos info: %s\n", m.error().to_string().c_str());
        return 1;
    }
    const engine::hparams& hp = (*m)->hp();
    std::printf("file        %s\n", path.c_str());
    std::printf("name        %s\n", hp.name.c_str());
    std::printf("arch        %s (weights %s; %.1f MiB)\n", hp.arch.c_str(), (*m)->weight_mix().c_str(),
                (*m)->n_weight_bytes() / 1048576.0);
    std::printf("dims        embd %d, layers %d, heads %d (kv %d), head dim %d, ffn %d\n", hp.n_embd, hp.n_layer,
                hp.n_head, hp.n_head_kv, hp.head_dim, hp.n_ff);
    std::printf("vocab       %d tokens, bos %d, eos %d\n", hp.n_vocab, (*m)->tok().bos(), (*m)->tok().eos());
    std::printf("context     %d (rope base %.0f, %s%s)\n", hp.n_ctx_train, hp.rope_freq_base,
                hp.rope == engine::rope_kind::neox ? "neox" : "normal", hp.tied_output ? ", tied output" : "");
    std::printf("chat        %s\n", (*m)->chat().name());
    if (tensors)
        for (const auto& t : (*m)->file().tensors()) {
            std::printf("  %-32s %-5s [", t.name.c_str(), kernels::traits_of(t.type).name);
            for (size_t i = 0; i < t.shape.size(); ++i) std::printf("%s%lld", i ? ", " : "", (long long)t.shape[i]);
            std::printf("]\n");
        }
    return 0;
}

}  // namespace mnemos::cli
