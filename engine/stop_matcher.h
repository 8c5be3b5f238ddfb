#pragma once
// Stop-string matching over streamed text: holds back text that may be the start
// of a stop string, so that a stop string is never emitted, even when it arrives
// split over many decoded tokens.
#include <string>
#include <string_view>
#include <vector>

namespace mnemos::engine {

class stop_matcher {
  public:
    // `stops`: the strings that end generation (empty strings are ignored).
    explicit stop_matcher(std::vector<std::string> stops);

    // Feeds newly decoded text. Returns the text that is safe to emit now: text that
    // might be the start of a stop string is held back, and so is an incomplete
    // UTF-8 sequence at the end (a token may end inside a code point). Once a stop
    // string appears, stopped() is true and the text before it (not yet emitted) is
    // returned; the stop string and anything after it are never emitted, and later
    // pushes return "".
    std::string push(std::string_view text);

    // Returns the held-back text, for when generation ends for another reason (EOS,
    // length limit). Returns "" after a stop.
    std::string flush();

    bool stopped() const { return stopped_; }
    // The stop string that matched; empty until stopped().
    const std::string& matched() const { return matched_; }

  private:
    std::vector<std::string> stops_;  // non-empty stop strings
    std::string held_;                // received but not yet emitted
    std::string matched_;             // the stop string found
    bool stopped_ = false;            // a stop string appeared; nothing more is emitted
};

}  // namespace mnemos::engine
