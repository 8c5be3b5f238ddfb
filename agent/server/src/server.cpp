// The server's lifecycle (agent/server/server.h): binding, the io threads, signals, graceful stop.
// What a connection does is in connection.cpp, the routes in routes.cpp, one file per API beside them.
#include "agent/server/server.h"

#include <condition_variable>
#include <optional>
#include <thread>

#include "agent/server/src/connection.h"
#include "agent/server/src/server_state.h"

namespace mnemos::agent {

using namespace server_detail;

namespace {

// Runs the io_context until it stops. A handler that throws (a bug: every expected failure is a value) loses its
// connection, not the server: the exception is logged and run() resumes, as Asio allows.
void run_io(net::io_context& io) {
    for (;;) {
        try {
            io.run();
            return;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "mnemos serve: an io handler threw (its connection is dropped): %s\n", e.what());
        } catch (...) {
            std::fprintf(stderr, "mnemos serve: an io handler threw (its connection is dropped)\n");
        }
    }
}

}  // namespace

struct server::impl {
    state_ptr st;
    net::io_context ioc;
    tcp::acceptor acceptor{ioc};
    std::optional<net::signal_set> signals;
    std::vector<std::thread> threads;
    uint16_t port = 0;
    std::mutex stop_mu;  // guards stopped, serializes stop()
    std::condition_variable stop_cv;
    bool stopped = false;

    explicit impl(int n_threads) : ioc(n_threads) {}
};

server::server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

result<std::unique_ptr<server>> server::start(const server_options& options, engine_runner& runner,
                                              session_manager& sessions) {
    error_code ec;
    const auto addr = net::ip::make_address(options.host, ec);
    if (ec) return make_error(errc::invalid_argument, "bad --host '" + options.host + "': " + ec.message());
    if (options.auth.keys.empty() && !addr.is_loopback())
        return make_error(errc::invalid_argument,
                          "open access (no API keys configured) is only allowed on a loopback host; pass --config");
    if (auto st = check_auth_keys(options.auth.keys); !st.ok()) return st;
    for (const auto& origin : options.cors_origins)
        if (auto st = check_cors_origin(origin); !st.ok()) return st;
    auto p = std::make_unique<impl>(std::max(1, options.n_io_threads));
    p->st = std::make_shared<server_state>();
    p->st->opt = options;
    p->st->runner = &runner;
    p->st->sessions = &sessions;
    // With keys there are principals to keep apart: each session's KV blocks are its own (README "Threat model").
    // Not for mnemos play --serve (on_player): the game runs its sessions' turns itself, unsalted, and players
    // speak to it through player frames; their stateless requests are still salted by key.
    if (!options.auth.keys.empty() && !options.on_player) sessions.set_cache_isolation(true);
    p->st->model_id = runner.model_name();
    p->st->hub->sessions = &sessions;
    p->st->turns =
        std::make_shared<turn_queue>(turn_queue::options{options.max_waiting_turns, options.turn_wait_timeout_ms});
    const tcp::endpoint ep(addr, options.port);
    p->acceptor.open(ep.protocol(), ec);
    if (!ec) p->acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) p->acceptor.bind(ep, ec);
    if (!ec) p->acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec)
        return make_error(errc::io_error, "cannot listen on " + options.host + ":" + std::to_string(options.port) +
                                              ": " + ec.message());
    p->port = p->acceptor.local_endpoint().port();
    net::co_spawn(p->acceptor.get_executor(), accept_loop(&p->acceptor, p->st), log_exception("accept loop"));
    // Durable events and the tokens of generations run outside the server (mnemos play's turns) go to
    // the WebSocket event feed while the io_context runs.
    start_feed(sessions, p->st->hub, p->st->gate);
    std::unique_ptr<server> s(new server(std::move(p)));
    if (options.handle_signals) {
        s->impl_->signals.emplace(s->impl_->ioc, SIGINT, SIGTERM);
        server* raw = s.get();
        s->impl_->signals->async_wait([raw](const error_code& e, int) {
            if (e) return;
            std::fprintf(stderr, "mnemos serve: signal received, shutting down\n");
            std::thread([raw] { raw->stop(); }).detach();
        });
    }
    for (int i = 0; i < std::max(1, options.n_io_threads); ++i)
        s->impl_->threads.emplace_back([io = &s->impl_->ioc] { run_io(*io); });
    return s;
}

uint16_t server::port() const { return impl_->port; }

void server::stop() {
    std::lock_guard lk(impl_->stop_mu);
    if (impl_->stopped) return;
    auto& st = *impl_->st;
    st.stopping = true;
    st.turns->close();  // turns waiting for their session answer 503
    net::post(impl_->acceptor.get_executor(), [a = &impl_->acceptor] {
        error_code ignored;
        a->close(ignored);
    });
    {
        std::lock_guard ilk(st.inflight_mu);
        for (auto id : st.inflight) st.runner->cancel(id);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (st.m.n_active_turns > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (impl_->signals) {
        error_code ignored;
        impl_->signals->cancel(ignored);
    }
    impl_->ioc.stop();
    for (auto& t : impl_->threads)
        if (t.joinable()) t.join();
    {
        std::lock_guard glk(st.gate->mu);
        st.gate->open = false;
    }
    stop_feed(*st.sessions);
    impl_->stopped = true;
    impl_->stop_cv.notify_all();
}

void server::wait() {
    std::unique_lock lk(impl_->stop_mu);
    impl_->stop_cv.wait(lk, [&] { return impl_->stopped; });
}

server::~server() {
    stop();
    // The gate is closed: engine callbacks of turns still in flight no longer post to ioc.
}

}  // namespace mnemos::agent
