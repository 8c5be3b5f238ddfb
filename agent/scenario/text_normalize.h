#pragma once
// The text form probe matching compares (agent/scenario/scenario.h
// score_probe): an answer and a fact are both normalised, then the fact is
// looked for in the answer. Normalising folds what a model writes in many
// ways for one meaning:
//  - width: full-width ASCII (Ａ, ９, ：) to ASCII, the ideographic space to a
//    space; every run of white space to one space;
//  - case: ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic to lower case;
//  - Chinese numerals of small numbers (0..99, and years written digit by
//    digit) to digits where they count hours, minutes, days, months or years
//    ("九点四十" -> "9点40", "十二月" -> "12月", "二〇二五年" -> "2025年");
//  - times to "H:MM" with the hour unpadded, followed by "am"/"pm" when the
//    text says which ("21:00", "9 pm", "9:00 p.m.", "晚上9点", "21点" ->
//    "9:00pm"; "09:05", "9点05分", "九点零五分" -> "9:05"; "九点半" -> "9:30";
//    "九点三刻" -> "9:45"; "12:05" stays "12:05", "00:05" -> "12:05am");
//  - dates to "Y-M-D" or "M-D" ("2025-03-03", "March 3rd, 2025",
//    "2025年3月3日" -> "2025-3-3"; "3 March", "三月三日", "3月3号" -> "3-3").
// A fact without am/pm ("9:40") is found in an answer with one ("9:40pm");
// a fact with one needs it. Invalid UTF-8 bytes pass through unchanged.
#include <string>
#include <string_view>

namespace mnemos::agent::scenario_text {

// The normalised form of s (above).
std::string normalize_for_match(std::string_view s);

// Whether normalised `needle` occurs in normalised `haystack` where it does not cut a number: a needle that
// starts (ends) with a digit does not match right after (before) another digit ("1:40" is not in "11:40").
// Both arguments are normalize_for_match() results.
bool contains_normalized(std::string_view haystack, std::string_view needle);

}  // namespace mnemos::agent::scenario_text
