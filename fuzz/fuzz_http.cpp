// HTTP request handling on arbitrary bytes: the parser every server connection reads with
// (agent/server/src/request_reader.h, the header, field, trailer and body limits of server.h) and, for a
// request it reads whole, the body readers of chat completions (request_parse.h) and of the Responses API
// (responses_input.h). Byte 0: bit 0 picks the body limit (64 bytes or 1 MiB), bit 1 feeds the rest in
// 7-byte pieces as a slow client would (else in one piece). Checked, besides "no crash, no sanitizer report,
// no exception out of the handlers":
//   - a body the parser accepts is within its limit, and a refused request is answered 400, 413 or 431;
//   - the body readers accept a request only with a JSON object body.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <variant>
#include <vector>

#include "agent/server/src/request_parse.h"
#include "agent/server/src/request_reader.h"
#include "agent/server/src/responses_input.h"

using namespace mnemos;
using namespace mnemos::agent::server_detail;

namespace {

// Feeds the bytes to the parser as a connection would: `piece` bytes arrive at a time, unconsumed bytes stay
// buffered. The end of the input is the end of the stream.
error_code feed(bounded_request_parser& parser, const uint8_t* data, size_t size, size_t piece) {
    std::string buffered;
    size_t arrived = 0;
    error_code ec;
    while (!parser.is_done()) {
        const size_t more = std::min(piece, size - arrived);
        buffered.append(reinterpret_cast<const char*>(data + arrived), more);
        arrived += more;
        const size_t used = parser.put(net::buffer(buffered), ec);
        buffered.erase(0, used);
        if (ec == http::error::need_more) ec = {};
        if (ec) return ec;
        if (arrived == size && used == 0) break;  // nothing more arrives and nothing more is consumed
    }
    // The stream ends: as Beast's read does, end_of_stream before any byte, else the parser decides.
    if (!parser.is_done()) {
        if (!parser.got_some()) return http::error::end_of_stream;
        parser.put_eof(ec);
    }
    return ec;
}

// The Responses reader: its fields, then `input` with no stored response to refer to.
void read_as_response(const json& body) {
    (void)parse_response_request(body);
    input_context cx;
    cx.resolve = [](const std::string& id) -> result<json> {
        return make_error(errc::not_found, "no stored item " + id);
    };
    std::vector<engine::chat_message> messages;
    (void)parse_response_input(body, cx, messages);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const size_t body_limit = (data[0] & 1) ? 64 : (size_t(1) << 20);
    const size_t piece = (data[0] & 2) ? 7 : size;
    bounded_request_parser parser(body_limit);
    parser.eager(true);
    const error_code ec = feed(parser, data + 1, size - 1, std::max<size_t>(piece, 1));
    if (ec) {
        if (ec == http::error::end_of_stream) return 0;  // nothing sent: the connection just closes
        const unsigned status = refused_request_status(ec);
        if (status != 400 && status != 413 && status != 431) std::abort();
        return 0;
    }
    if (!parser.is_done()) return 0;
    const request_t req = parser.release();
    if (req.body().size() > body_limit) std::abort();

    const auto turn = parse_turn_request(req, parse_messages);
    const auto body = parse_body(req);
    if (std::holds_alternative<turn_request>(turn) && !std::holds_alternative<json>(body)) std::abort();
    if (const json* b = std::get_if<json>(&body)) {
        if (!b->is_object()) std::abort();
        read_as_response(*b);
    }
    return 0;
}
