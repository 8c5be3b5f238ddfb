#include "tests/cluster/nats_cluster.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "cluster/event_stream.h"
#include "cluster/nats_client.h"

namespace mnemos::test {

int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("no free port");
    close(fd);
    return ntohs(a.sin_port);
}

bool nats_cluster::available() { return std::system("command -v nats-server >/dev/null 2>&1") == 0; }

nats_cluster::nats_cluster(int n, int max_payload) : max_payload_(max_payload) {
    char tmpl[] = "/tmp/mnemos-nats-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    root_ = tmpl;
    for (int i = 0; i < n; ++i) {
        nats_server_proc s;
        s.name = "n" + std::to_string(i);
        s.client_port = free_port();
        s.cluster_port = free_port();
        s.dir = root_ + "/" + s.name;
        std::filesystem::create_directories(s.dir + "/js");
        servers_.push_back(s);
    }
    for (auto& s : servers_) {
        std::ofstream conf(s.dir + "/server.conf");
        conf << "server_name: " << s.name << "\nlisten: 127.0.0.1:" << s.client_port
             << "\nmax_payload: " << max_payload_ << "\njetstream { store_dir: \"" << s.dir
             << "/js\" }\ncluster {\n  name: c\n  listen: 127.0.0.1:" << s.cluster_port << "\n  routes: [";
        for (auto& o : servers_)
            if (&o != &s) conf << "\n    nats-route://127.0.0.1:" << o.cluster_port;
        conf << "\n  ]\n}\n";
    }
    for (auto& s : servers_) start(s);
    wait_ready();
}

void nats_cluster::start(nats_server_proc& s) {
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        std::string log = s.dir + "/server.log", conf = s.dir + "/server.conf";
        execlp("nats-server", "nats-server", "-c", conf.c_str(), "-l", log.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    s.pid = pid;
}

void nats_cluster::kill(int i) {
    auto& s = servers_.at(size_t(i));
    if (s.pid <= 0) return;
    ::kill(s.pid, SIGKILL);
    waitpid(s.pid, nullptr, 0);
    s.pid = -1;
}

void nats_cluster::restart(int i) { start(servers_.at(size_t(i))); }

void nats_cluster::wait_ready() const {
    cluster::client_options o;
    o.urls = url_list();
    o.retry_ms = 30000;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto c = cluster::client::connect(o);
    while (!c && std::chrono::steady_clock::now() < deadline) {  // the servers are still starting
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        c = cluster::client::connect(o);
    }
    if (!c) throw std::runtime_error("the test NATS cluster did not start: " + c.error().to_string());
    cluster::stream_options so;
    static int round = 0;  // a new stream each time: it needs every server online and caught up
    so.name = "HARNESS_READY_" + std::to_string(++round);
    so.subject_prefix = "harness.ready" + std::to_string(round);
    so.replicas = int(servers_.size());
    auto st = cluster::event_stream::open(**c, so);
    if (!st) throw std::runtime_error("the test NATS cluster has no JetStream quorum: " + st.error().to_string());
}

std::string nats_cluster::urls() const {
    std::string out;
    for (auto& u : url_list()) out += (out.empty() ? "" : ",") + u;
    return out;
}

std::vector<std::string> nats_cluster::url_list() const {
    std::vector<std::string> out;
    for (auto& s : servers_) out.push_back("nats://127.0.0.1:" + std::to_string(s.client_port));
    return out;
}

nats_cluster::~nats_cluster() {
    for (auto& s : servers_)
        if (s.pid > 0) ::kill(s.pid, SIGTERM);
    for (auto& s : servers_)
        if (s.pid > 0) waitpid(s.pid, nullptr, 0);
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
}

}  // namespace mnemos::test
