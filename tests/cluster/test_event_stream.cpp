// cluster/event_stream on a real 3-server JetStream cluster: round trip,
// fencing by expected subject sequence, survival of a killed server.
#include <atomic>
#include <thread>

#include "cluster/event_stream.h"
#include "tests/cluster/cluster_util.h"

using namespace mnemos;
using namespace mnemos::cluster;

namespace {
std::unique_ptr<event_stream> open_stream(client& c, int replicas = 3) {
    stream_options o;
    o.name = "EVENTS_TEST";
    o.subject_prefix = "test.ev";
    o.replicas = replicas;
    auto s = event_stream::open(c, o);
    INFO(test::why(s));
    REQUIRE(s.ok());
    return std::move(*s);
}
}  // namespace

TEST_CASE("event stream: append and read back a session's events in order", "[cluster]") {
    MNEMOS_NEED_NATS();
    auto c = test::connect(*nats);
    auto s = open_stream(*c);
    const std::string a = test::unique_name("alice/"), b = test::unique_name("bob#");
    REQUIRE(s->read(a)->empty());
    REQUIRE(*s->last_seq(a) == 0);
    uint64_t last_a = 0, last_b = 0;
    for (int i = 0; i < 20; ++i) {
        auto ra = s->append(a, R"({"i":)" + std::to_string(i) + "}", last_a);
        INFO(test::why(ra));
        REQUIRE(ra.ok());
        REQUIRE(*ra > last_a);
        last_a = *ra;
        if (i % 2 == 0) {
            auto rb = s->append(b, "b" + std::to_string(i), last_b);
            INFO(test::why(rb));
            REQUIRE(rb.ok());
            last_b = *rb;
        }
    }
    auto ev = s->read(a);
    INFO(test::why(ev));
    REQUIRE(ev.ok());
    REQUIRE(ev->size() == 20);
    for (int i = 0; i < 20; ++i) CHECK((*ev)[size_t(i)].data == R"({"i":)" + std::to_string(i) + "}");
    CHECK(ev->back().stream_seq == last_a);
    CHECK(s->read(b)->size() == 10);
    CHECK(*s->last_seq(a) == last_a);

    REQUIRE(s->purge(a).ok());
    CHECK(s->read(a)->empty());
    CHECK(s->read(b)->size() == 10);
}

TEST_CASE("event stream: bad input is refused with a clear error", "[cluster]") {
    MNEMOS_NEED_NATS();
    auto c = test::connect(*nats);
    auto s = open_stream(*c);
    auto r = s->append("", "x", 0);
    REQUIRE(!r.ok());
    CHECK(r.error().code() == errc::invalid_argument);
    r = s->append("ok", std::string(size_t(c->max_payload()), 'x'), 0);
    REQUIRE(!r.ok());
    CHECK(r.error().code() == errc::invalid_argument);
    stream_options bad;
    bad.name = "has space";
    CHECK(event_stream::open(*c, bad).error().code() == errc::invalid_argument);
}

TEST_CASE("event stream: a stale expected sequence is fenced", "[cluster]") {
    MNEMOS_NEED_NATS();
    auto c = test::connect(*nats);
    auto s = open_stream(*c);
    const std::string id = test::unique_name("fenced");
    auto first = s->append(id, "one", 0);
    INFO(test::why(first));
    REQUIRE(first.ok());
    auto again = s->append(id, "one again", 0);  // expected "no event yet", but there is one
    REQUIRE(!again.ok());
    CHECK(again.error().code() == errc::busy);
    CHECK(again.error().message().find("fenced") != std::string::npos);
    CHECK(again.error().message().find(id) != std::string::npos);
    REQUIRE(s->append(id, "two", *first).ok());
    CHECK(s->append(id, "stale", *first).error().code() == errc::busy);
    auto ev = s->read(id);
    REQUIRE(ev->size() == 2);
    CHECK((*ev)[0].data == "one");
    CHECK((*ev)[1].data == "two");
}

TEST_CASE("event stream: two writers racing on one session, exactly one wins each sequence", "[cluster]") {
    MNEMOS_NEED_NATS();
    auto c1 = test::connect(*nats), c2 = test::connect(*nats);
    auto s1 = open_stream(*c1), s2 = open_stream(*c2);
    const std::string id = test::unique_name("race");
    constexpr int rounds = 60;
    std::atomic<int> wins[2] = {0, 0}, fenced[2] = {0, 0};
    // Each round both writers append with the same expected sequence (the
    // log's last one before the round); exactly one may win.
    uint64_t expected = 0;
    for (int r = 0; r < rounds; ++r) {
        std::atomic<uint64_t> won_seq{0};
        auto write = [&](int w, event_stream& s) {
            auto res = s.append(id, "w" + std::to_string(w) + "r" + std::to_string(r), expected);
            if (res.ok()) {
                ++wins[w];
                won_seq = *res;
            } else {
                if (res.error().code() != errc::busy) FAIL_CHECK(test::why(res));
                ++fenced[w];
            }
        };
        std::thread t1(write, 0, std::ref(*s1)), t2(write, 1, std::ref(*s2));
        t1.join();
        t2.join();
        INFO("round " << r << ": wins " << wins[0] << "+" << wins[1] << ", fenced " << fenced[0] << "+" << fenced[1]);
        REQUIRE(won_seq != 0);
        expected = won_seq;
    }
    CHECK(wins[0] + wins[1] == rounds);
    CHECK(fenced[0] + fenced[1] == rounds);
    auto ev = s1->read(id);
    REQUIRE(ev->size() == size_t(rounds));
    for (int r = 0; r < rounds; ++r) CHECK((*ev)[size_t(r)].data.substr(2) == "r" + std::to_string(r));
}

TEST_CASE("event stream: appends continue while one nats-server is killed, and after it returns", "[cluster]") {
    MNEMOS_NEED_NATS();
    auto c = test::connect(*nats);
    auto s = open_stream(*c);
    const std::string id = test::unique_name("survivor");
    uint64_t last = 0;
    int n = 0;
    auto append_some = [&](int k) {
        for (int i = 0; i < k; ++i, ++n) {
            auto r = s->append(id, std::to_string(n), last);
            INFO(test::why(r));
            REQUIRE(r.ok());
            last = *r;
        }
    };
    append_some(5);
    for (int victim = 0; victim < 3; ++victim) {
        nats->kill(victim);
        append_some(5);
        auto back = s->read(id);
        INFO(test::why(back));
        REQUIRE(back.ok());
        REQUIRE(back->size() == size_t(n));
        nats->restart(victim);
        nats->wait_ready();
        append_some(2);
    }
    auto ev = s->read(id);
    INFO(test::why(ev));
    REQUIRE(ev.ok());
    REQUIRE(ev->size() == size_t(n));
    for (int i = 0; i < n; ++i) CHECK((*ev)[size_t(i)].data == std::to_string(i));
}
