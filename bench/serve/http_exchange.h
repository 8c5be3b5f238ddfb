#pragma once
// One HTTP request on a fresh loopback connection, for the benches that drive `mnemos serve` (bench_serve,
// bench_cluster): the whole response, "" on failure; ttft_ms (when given and still < 0): when the second SSE
// "data: " arrived (the first content chunk).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace mnemos::bench {

inline std::string http_exchange(uint16_t port, const std::string& method, const std::string& target,
                                 const std::string& body, double* ttft_ms = nullptr) {
    using clk = std::chrono::steady_clock;
    const std::string req = method + " " + target +
                            " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
                            "Content-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string in;
    const auto t0 = clk::now();
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
        char buf[4096];
        for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
            in.append(buf, static_cast<size_t>(n));
            const size_t p = in.find("data: ");
            if (ttft_ms && *ttft_ms < 0 && p != std::string::npos && in.find("data: ", p + 1) != std::string::npos)
                *ttft_ms = std::chrono::duration<double, std::milli>(clk::now() - t0).count();
        }
    }
    ::close(fd);
    return in;
}

}  // namespace mnemos::bench
