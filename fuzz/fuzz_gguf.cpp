// GGUF reader: arbitrary bytes -> gguf_file::parse, every typed getter on every key, tensor
// bookkeeping, a tokenizer from the metadata, and (when the file names an architecture) a full
// model::load through a memfd, so hyper-parameter and tensor-shape validation run as well.
// Invariant: any input gives a status or a value, never a crash, a sanitizer report or a huge
// allocation.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/chat_template.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/tokenizer.h"

using namespace mnemos::engine;

namespace {

// A file the loader can open by path without touching the disk.
int memfd_of(const uint8_t* data, size_t size) {
    const int fd = memfd_create("fuzz_gguf", MFD_CLOEXEC);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < size) {
        const ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += static_cast<size_t>(n);
    }
    return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto f = gguf_file::parse(data, size);
    if (!f) {
        if (f.error().to_string().empty()) std::abort();
        return 0;
    }
    const gguf_file& g = **f;
    size_t sink = g.version() + g.alignment() + g.file_size();
    for (const auto& [key, v] : g.metadata()) {
        if (g.find(key) == nullptr) std::abort();  // every key is found again
        if (auto s = g.get_str(key)) sink += s->size();
        if (auto i = g.get_int(key)) sink += static_cast<size_t>(*i);
        if (auto d = g.get_float(key)) sink += *d > 0;
        if (auto b = g.get_bool(key)) sink += *b;
        if (auto a = g.get_str_array(key)) sink += a->size();
        if (auto a = g.get_float_array(key)) sink += a->size();
        if (auto a = g.get_int_array(key)) sink += a->size();
        sink += v.n_elems;
    }
    for (const gguf_tensor& t : g.tensors()) {
        if (g.find_tensor(t.name) == nullptr) std::abort();
        // Validated to lie inside the image.
        const auto* p = static_cast<const uint8_t*>(t.data);
        if (t.n_bytes > 0 && p != nullptr) sink += p[0] + p[t.n_bytes - 1];
        sink += static_cast<size_t>(t.n_elements());
    }
    if (auto tok = tokenizer::from_gguf(g)) {
        const auto ids = (*tok)->encode("Hello <s> world\n\xff", true, true);
        sink += (*tok)->decode(ids).size();
    }
    if (auto tmpl = g.get_str("tokenizer.chat_template")) sink += chat_template::detect(*tmpl).ok();
    if (g.get_str("general.architecture") && !g.tensors().empty()) {
        const int fd = memfd_of(data, size);
        if (fd >= 0) {
            auto m = model::load("/proc/self/fd/" + std::to_string(fd));
            if (m) sink += (*m)->n_weight_bytes();
            close(fd);
        }
    }
    volatile size_t keep = sink;
    (void)keep;
    return 0;
}
