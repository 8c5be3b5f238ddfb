#pragma once
// A blocking Beast WebSocket client for the agent tests (test_ws.cpp, test_play.cpp).
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

// Internal linkage: each test file gets its own copy.
namespace mnemos::test_agent {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

// A blocking WebSocket client; a read gives up after 10 s (the socket is then closed).
struct ws_client {
    net::io_context ioc;
    websocket::stream<tcp::socket> ws{ioc};
    beast::flat_buffer buf;
    bool ok = false;

    ws_client(uint16_t port, const std::string& target, const std::string& bearer = "") {
        boost::system::error_code ec;
        ws.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
        if (ec) return;
        if (!bearer.empty())
            ws.set_option(websocket::stream_base::decorator([bearer](websocket::request_type& req) {
                req.set(beast::http::field::authorization, "Bearer " + bearer);
            }));
        ws.handshake("127.0.0.1", target, ec);
        ok = !ec;
    }
    void send(const std::string& text) {
        ws.text(true);
        ws.write(net::buffer(text));
    }
    void send_binary(const std::string& bytes) {
        ws.binary(true);
        ws.write(net::buffer(bytes));
    }
    // The next frame as JSON; nullopt on error or timeout.
    std::optional<nlohmann::json> next() {
        // An asynchronous read run for at most 10 s: a blocking read would ignore SO_RCVTIMEO and
        // hang the test when a frame never comes.
        buf.consume(buf.size());
        boost::system::error_code ec = net::error::would_block;
        ws.async_read(buf, [&ec](boost::system::error_code e, size_t) { ec = e; });
        ioc.restart();
        ioc.run_for(std::chrono::seconds(10));
        if (ec == net::error::would_block) {  // timed out: close, and let the read finish (aborted)
            boost::system::error_code ignored;
            ws.next_layer().close(ignored);
            ioc.restart();
            ioc.run();
            return std::nullopt;
        }
        if (ec) return std::nullopt;
        nlohmann::json j = nlohmann::json::parse(beast::buffers_to_string(buf.data()), nullptr, false);
        if (j.is_discarded()) return std::nullopt;
        return j;
    }
    // Frames until one of type `type` (inclusive); empty when the socket fails first.
    std::vector<nlohmann::json> until(const std::string& type) {
        std::vector<nlohmann::json> out;
        for (;;) {
            auto j = next();
            if (!j) return {};
            out.push_back(*j);
            if ((*j)["type"] == type) return out;
        }
    }
};

}  // namespace
}  // namespace mnemos::test_agent
