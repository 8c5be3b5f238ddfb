#pragma once
// Shared by the cluster tests: one 3-server NATS cluster for the whole test
// binary (started on first use) and a client connected to it.
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <type_traits>

#include "cluster/nats_client.h"
#include "tests/cluster/nats_cluster.h"

namespace mnemos::test {

// The binary's cluster; nullptr (and a Catch2 WARN) when nats-server is not installed.
inline nats_cluster* shared_cluster() {
    static std::unique_ptr<nats_cluster> c = nats_cluster::available() ? std::make_unique<nats_cluster>(3) : nullptr;
    return c.get();
}

inline std::unique_ptr<cluster::client> connect(const nats_cluster& nc, int64_t retry_ms = 20000) {
    cluster::client_options o;
    o.urls = nc.url_list();
    o.retry_ms = retry_ms;
    auto c = cluster::client::connect(o);
    REQUIRE(c.ok());
    return std::move(*c);
}

// The error of a result or status, for INFO(): "ok" when there is none.
template <class R>
std::string why(const R& r) {
    if constexpr (std::is_same_v<R, status>)
        return r.to_string();
    else
        return r.ok() ? "ok" : r.error().to_string();
}

// A name unique within this run (tests share the cluster).
inline std::string unique_name(const std::string& base) {
    static int n = 0;
    return base + std::to_string(++n);
}

}  // namespace mnemos::test

// Skips the test case when there is no nats-server.
#define MNEMOS_NEED_NATS()                                          \
    auto* nats = ::mnemos::test::shared_cluster();                  \
    if (!nats) {                                                    \
        WARN("nats-server is not installed: cluster test skipped"); \
        return;                                                     \
    }
