#pragma once
// Rewrites a JSON Schema into the plain form the grammar compiler reads:
//   $ref (local JSON pointers: "#", "#/$defs/x", "#/definitions/x", any "#/...") expanded in place; a
//     reference already being expanded `max_recursion` times on the current path becomes `false` (the
//     recursion is cut there: arrays of it end empty, optional properties of it are left out, anyOf
//     alternatives of it dropped); $ref siblings are merged as with allOf;
//   allOf merged into one schema (properties merged key by key, required united, the tighter of numeric
//     bounds, types intersected, enums intersected; anyOf members distributed);
//   oneOf read as anyOf (exact when the alternatives are disjoint, as discriminated unions are);
//   keywords beside anyOf distributed into each alternative;
//   const/enum values that are objects or arrays turned into object/array schemas of consts.
// $defs and definitions are dropped from the output.
#include <cstdint>
#include <string>

#include "engine/src/grammar_json.h"
#include "engine/status.h"

namespace mnemos::engine {

// Errors: unsupported ($ref to another document, an allOf whose parts conflict in a way that cannot be
// merged, an expansion over the size limit), invalid_argument (a $ref that points nowhere, a keyword of the
// wrong kind). Messages name the keyword and the path.
status normalize_schema(const json_value& root, int32_t max_recursion, json_value& out);

// One schema meaning both a and b (normalized schemas); see above for how (grammar_schema_merge.cpp).
status merge_schemas(const json_value& a, const json_value& b, const std::string& path, json_value& out);

// Object member helpers for json_value.
void set_member(json_value& o, const std::string& key, json_value v);
void erase_member(json_value& o, const std::string& key);
// Schema keywords that only annotate (accepted and ignored).
bool is_annotation(const std::string& k);

}  // namespace mnemos::engine
