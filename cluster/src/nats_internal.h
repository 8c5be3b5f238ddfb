#pragma once
// Internals shared by cluster/'s classes: the libnats handles of a client,
// the mapping of libnats errors to mnemos status, and the retry loop.
#include <nats/nats.h>

#include <chrono>
#include <functional>
#include <string>

#include "cluster/nats_client.h"

namespace mnemos::cluster {

struct client::impl {
    client_options options;          // as given to connect()
    natsOptions* opts = nullptr;     // owned; the URL list and reconnect policy
    natsConnection* conn = nullptr;  // owned; thread-safe
    jsCtx* js = nullptr;             // owned; JetStream context on conn
    ~impl();
};

namespace detail {

// "what: libnats status text (jetstream error N)" with the last error's detail.
std::string describe(const char* what, natsStatus s, jsErrCode jerr = jsErrCode(0));

// Whether s (with jerr) is worth retrying: a timeout, no responders (no
// stream leader yet), a connection being re-established.
bool transient(natsStatus s, jsErrCode jerr = jsErrCode(0));

// Calls op until it returns a status that is not transient or the client's
// retry_ms have passed, sleeping a little between tries. op returns the
// libnats status and sets jerr.
natsStatus with_retry(client::impl& c, const std::function<natsStatus(jsErrCode& jerr)>& op, jsErrCode& jerr);

}  // namespace detail
}  // namespace mnemos::cluster
