// mnemos info: print what a GGUF model file holds.
#include <cstdio>
#include <string>

#include "agent/cli/args.h"
#include "agent/cli/commands.h"
#include "engine/model.h"

namespace mnemos::cli {

int cmd_info(int argc, char** argv) {
    std::string path;
    bool tensors = false;
    arg_parser p("mnemos info [--model FILE] [--tensors]",
                 "Loads a GGUF model and prints its hyper-parameters, tokenizer and chat template;\n"
                 "--tensors also lists every tensor. Exit code 1 and the reason when the file is invalid.");
    p.text("--model,-m", path, "FILE", "GGUF model (default: $MNEMOS_MODEL, else ../shared/models)");
    p.toggle("--tensors", tensors, "list every tensor: name, type, shape");
    if (const int rc = p.run(argc, argv); rc >= 0) return rc;
    path = resolve_model_path(path);
    int rc = 0;
    auto m = load_command_model("info", path, &rc);
    if (!m) return rc;
    const engine::hparams& hp = m->hp();
    std::printf("file        %s\n", path.c_str());
    std::printf("name        %s\n", hp.name.c_str());
    std::printf("arch        %s (weights %s; %.1f MiB)\n", hp.arch.c_str(), m->weight_mix().c_str(),
                m->n_weight_bytes() / 1048576.0);
    std::printf("dims        embd %d, layers %d, heads %d (kv %d), head dim %d, ffn %d\n", hp.n_embd, hp.n_layer,
                hp.n_head, hp.n_head_kv, hp.head_dim, hp.n_ff);
    std::printf("vocab       %d tokens, bos %d, eos %d\n", hp.n_vocab, m->tok().bos(), m->tok().eos());
    std::printf("context     %d (rope base %.0f, %s%s)\n", hp.n_ctx_train, hp.rope_freq_base,
                hp.rope == engine::rope_kind::neox ? "neox" : "normal", hp.tied_output ? ", tied output" : "");
    std::printf("chat        %s\n", m->chat().name());
    if (tensors)
        for (const auto& t : m->file().tensors()) {
            std::printf("  %-32s %-5s [", t.name.c_str(), kernels::traits_of(t.type).name);
            for (size_t i = 0; i < t.shape.size(); ++i) std::printf("%s%lld", i ? ", " : "", (long long)t.shape[i]);
            std::printf("]\n");
        }
    return 0;
}

}  // namespace mnemos::cli
