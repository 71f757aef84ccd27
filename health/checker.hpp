// Active HTTP health checks, one loop per endpoint on the control thread's event loop,
// off the data path. Results go to a callback that republishes the routing snapshot.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "health/state.hpp"
#include "proxy/stream.hpp"

struct nghttp2_session;

namespace veer::health {

struct target {
    std::uint32_t id = 0;
    std::string address;  // for Host and logs
    std::string name;  // the DNS name it is an address of ("api.internal:80"): then the Host
    boost::asio::ip::tcp::endpoint at;
    // A TLS pool's endpoints are checked over TLS, as requests reach them.
    std::shared_ptr<void> tls;  // asio::ssl::context, or null
    std::string tls_name;
    bool tls_verify = true;
    config::health settings;  // its pool's: [health] with [pools.NAME.health] over it
    bool h2 = false;  // its pool speaks HTTP/2: so does the check
};

// The status of a framed grpc.health.v1.HealthCheckResponse (1: SERVING), -1 if `body`
// is not one.
int grpc_health_status(std::string_view body);

class checker {
public:
    using on_change = std::function<void(std::uint32_t id, bool healthy, std::string why)>;
    checker(boost::asio::io_context& ioc, on_change cb) : ioc_(ioc), cb_(std::move(cb)) {}
    // Starts checking `targets`, each with its settings, ending the loops of any earlier
    // set. Endpoints keep their state across calls when their id is still there.
    void run(std::vector<target> targets);
    void stop() { ++generation_; }

private:
    proxy::task<> loop(target t, config::health settings, std::uint64_t generation);
    // One check within settings.timeout: "" when it passed, else why it failed.
    proxy::task<std::string> probe(const target& t, const config::health& settings);
    proxy::task<std::string> exchange(const target& t, const config::health& settings);
    proxy::task<std::string> exchange_h2(proxy::stream& s, const target& t,
                                         const config::health& settings, const std::string& host);
    static void submit_check(nghttp2_session* session, const target& t,
                             const config::health& settings, const std::string& host);
    // health.grpc: "" when the answer is grpc-status 0 with status SERVING, else why not.
    static std::string judge_grpc(const target& t, const std::string& grpc_status,
                                  const std::string& body);

    boost::asio::io_context& ioc_;
    on_change cb_;
    std::uint64_t generation_ = 0;
    std::vector<std::pair<std::uint32_t, check_state>> states_;
    check_state& state_of(std::uint32_t id);
};

}  // namespace veer::health
