// What store::open says when it cannot open: "no store at PATH" (nothing created) without create_if_missing,
// and "in use by another process (pid N)" while another process holds the store (a child: this test binary,
// re-executed with a hidden test case, opens the store and waits to be killed).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "memory/store.h"
#include "tests/memory/util.h"

using namespace mnemos;
using namespace mnemos::memory;

TEST_CASE("lock holder child: open the store, report, wait", "[.lock_holder_child]") {
    const char* db = std::getenv("MNEMOS_LOCK_DB");
    const char* fd_s = std::getenv("MNEMOS_LOCK_FD");
    if (!db || !fd_s) return;
    auto st = store::open({.path = db});
    const char ok = st.ok() ? 'y' : 'n';
    if (::write(std::atoi(fd_s), &ok, 1) != 1) std::_Exit(5);
    ::pause();
}

TEST_CASE("open: no store at a missing path, and nothing created", "[memory][open]") {
    test::temp_dir dir("open_missing");
    const std::string db = dir.sub("nothing-here");
    store_options o{.path = db};
    o.create_if_missing = false;
    auto st = store::open(o);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code() == errc::not_found);
    CHECK(st.error().message() == "no store at " + db);
    CHECK_FALSE(std::filesystem::exists(db));
}

TEST_CASE("open: a store held by this or another process is named as in use", "[memory][open]") {
    test::temp_dir dir("open_locked");
    const std::string db = dir.sub("db");
    {
        auto first = store::open({.path = db});
        REQUIRE(first.ok());
        auto second = store::open({.path = db});
        REQUIRE_FALSE(second.ok());
        CHECK(second.error().code() == errc::busy);
        CHECK(second.error().message().find("is in use by this process") != std::string::npos);
    }
    const auto [pid, read_fd] =
        test::spawn_test_child("[.lock_holder_child]", "MNEMOS_LOCK_FD", {{"MNEMOS_LOCK_DB", db}});
    char opened = 0;
    REQUIRE(::read(read_fd, &opened, 1) == 1);
    ::close(read_fd);
    REQUIRE(opened == 'y');
    auto held = store::open({.path = db});
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    REQUIRE_FALSE(held.ok());
    CHECK(held.error().code() == errc::busy);
    CHECK(held.error().message() == "store " + db + " is in use by another process (pid " + std::to_string(pid) +
                                        "); stop it or use another --store");
    CHECK(store::open({.path = db}).ok());  // the holder is gone: the store opens
}
