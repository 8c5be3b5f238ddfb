#include "engine/attention.h"

namespace mnemos::engine {

const char* attention_mode_name(attention_mode m) {
    switch (m) {
        case attention_mode::full:
            return "full";
        case attention_mode::sparse:
            return "sparse";
        case attention_mode::automatic:
            return "auto";
    }
    return "?";
}

bool parse_attention_mode(std::string_view s, attention_mode* out) {
    if (s == "full")
        *out = attention_mode::full;
    else if (s == "sparse")
        *out = attention_mode::sparse;
    else if (s == "auto")
        *out = attention_mode::automatic;
    else
        return false;
    return true;
}

}  // namespace mnemos::engine
