// agent/cluster/cluster_session_store: two nodes' session stores over one JetStream cluster.
#include "agent/cluster/cluster_session_store.h"
#include "tests/cluster/cluster_util.h"

using namespace mnemos;
using namespace mnemos::cluster;

namespace {
struct shared_parts {
    std::unique_ptr<client> c;
    std::unique_ptr<event_stream> events;
    std::unique_ptr<kv_bucket> sessions, prefixes;
};

shared_parts open_parts(test::nats_cluster& nats, const std::string& suffix) {
    shared_parts p;
    p.c = test::connect(nats);
    stream_options so;
    so.name = "STORE_EVENTS" + suffix;
    so.subject_prefix = "store.ev" + suffix;
    auto ev = event_stream::open(*p.c, so);
    REQUIRE(ev.ok());
    p.events = std::move(*ev);
    bucket_options bo;
    bo.name = "STORE_SESSIONS" + suffix;
    auto s = kv_bucket::open(*p.c, bo);
    REQUIRE(s.ok());
    p.sessions = std::move(*s);
    bo.name = "STORE_PREFIXES" + suffix;
    auto pr = kv_bucket::open(*p.c, bo);
    REQUIRE(pr.ok());
    p.prefixes = std::move(*pr);
    return p;
}
}  // namespace

TEST_CASE("cluster session store: another node sees the session; a node with a stale copy is fenced", "[cluster]") {
    MNEMOS_NEED_NATS();
    const std::string suffix = test::unique_name("_");
    auto pa = open_parts(*nats, suffix), pb = open_parts(*nats, suffix);
    agent::cluster_session_store a(*pa.events, *pa.sessions, *pa.prefixes), b(*pb.events, *pb.sessions, *pb.prefixes);

    REQUIRE(a.put_session("tale", R"({"id":"tale"})").ok());
    auto s0 = a.append_event("tale", R"({"n":0})");
    INFO(test::why(s0));
    REQUIRE(s0.ok());
    CHECK(*s0 == 0);
    CHECK(*a.append_event("tale", R"({"n":1})") == 1);

    // Node b takes the session over: it reads the log, then appends.
    CHECK(*b.get_session("tale") == R"({"id":"tale"})");
    auto evs = b.read_events("tale");
    REQUIRE(evs.ok());
    CHECK(*evs == std::vector<std::string>{R"({"n":0})", R"({"n":1})"});
    CHECK(*b.append_event("tale", R"({"n":2})") == 2);

    // Node a still holds its old copy: its append is fenced, nothing is written.
    auto stale = a.append_event("tale", R"({"n":"stale"})");
    REQUIRE(!stale.ok());
    CHECK(stale.error().code() == errc::busy);
    CHECK(stale.error().message().find("fenced") != std::string::npos);
    CHECK(b.read_events("tale")->size() == 3);

    // Once a forgets and re-reads (it took the lease back), it appends after b's event.
    a.forget("tale");
    CHECK(a.read_events("tale")->size() == 3);
    CHECK(*a.append_event("tale", R"({"n":3})") == 3);
    CHECK(b.read_events("tale")->back() == R"({"n":3})");

    CHECK(b.list_sessions() == std::vector<std::string>{"tale"});
    REQUIRE(a.put_prefix("rules", "Be kind.").ok());
    CHECK(b.load_prefixes() == std::map<std::string, std::string>{{"rules", "Be kind."}});
    REQUIRE(b.delete_session("tale").ok());
    CHECK(a.get_session("tale").error().code() == errc::not_found);
    CHECK(a.read_events("tale")->empty());
    CHECK(b.list_sessions().empty());
}
