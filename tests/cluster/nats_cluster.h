#pragma once
// Test harness: a 3-server nats-server cluster with JetStream on loopback
// (free ports, a temporary directory per server, a small max_payload so that
// KV blocks are chunked), started by the constructor and stopped by the
// destructor. Servers can be killed (SIGKILL) and restarted on their ports
// and directories. Tests skip (with a message) when nats-server is missing.
#include <sys/types.h>

#include <string>
#include <vector>

namespace mnemos::test {

struct nats_server_proc {
    std::string name;      // n0, n1, n2
    int client_port = 0;   // nats:// port
    int cluster_port = 0;  // route port
    std::string dir;       // config file and JetStream store
    pid_t pid = -1;        // -1 when not running
};

class nats_cluster {
  public:
    // Starts n servers and waits until JetStream has a meta leader and
    // accepts an R=n stream (throws std::runtime_error when it does not
    // within 30 s). max_payload: the servers' message size limit.
    explicit nats_cluster(int n = 3, int max_payload = 64 * 1024);
    ~nats_cluster();
    nats_cluster(const nats_cluster&) = delete;
    nats_cluster& operator=(const nats_cluster&) = delete;

    // "nats://127.0.0.1:P1,nats://127.0.0.1:P2,..."
    std::string urls() const;
    std::vector<std::string> url_list() const;
    // SIGKILLs server i and waits for it.
    void kill(int i);
    // Starts server i again (same port, same store).
    void restart(int i);
    // Waits until JetStream answers and an R=n stream can be created again.
    void wait_ready() const;
    const std::vector<nats_server_proc>& servers() const { return servers_; }
    const std::string& root() const { return root_; }

    // Whether nats-server is on PATH.
    static bool available();

  private:
    void start(nats_server_proc& s);
    std::vector<nats_server_proc> servers_;  // the servers, in order
    std::string root_;                       // temporary directory holding every server's
    int max_payload_;                        // as configured
};

// A free TCP port on 127.0.0.1 (bound, read, closed).
int free_port();

}  // namespace mnemos::test
