// cluster::member against a real etcd started by the test on loopback (a temp data dir,
// stopped by PID): leadership by lowest create_revision, guarded writes, and a deposed
// leader whose write etcd refuses although the instance still believes it leads.
#include "cluster/member.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace veer::cluster {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

int free_port() {
    asio::io_context ioc;
    asio::ip::tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

bool port_open(int port) {
    asio::io_context ioc;
    asio::ip::tcp::socket s(ioc);
    boost::system::error_code ec;
    s.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)}, ec);
    return !ec;
}

// One etcd member on two free loopback ports; skipped when etcd is not installed.
struct etcd_process {
    etcd_process() {
        if (::access("/usr/bin/etcd", X_OK) != 0) return;
        dir = std::filesystem::temp_directory_path() /
              ("veer-member-test-" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
        client = free_port();
        const int peer = free_port();
        url = "http://127.0.0.1:" + std::to_string(client);
        const auto peer_url = "http://127.0.0.1:" + std::to_string(peer);
        pid = ::fork();
        if (pid == 0) {
            const auto log = (dir / "etcd.log").string();
            std::freopen(log.c_str(), "w", stdout);
            std::freopen(log.c_str(), "a", stderr);
            const auto data = (dir / "data").string();
            const auto cluster = "default=" + peer_url;
            ::execl("/usr/bin/etcd", "etcd", "--data-dir", data.c_str(), "--listen-client-urls",
                    url.c_str(), "--advertise-client-urls", url.c_str(), "--listen-peer-urls",
                    peer_url.c_str(), "--initial-advertise-peer-urls", peer_url.c_str(),
                    "--initial-cluster", cluster.c_str(), nullptr);
            ::_exit(127);
        }
        const auto until = std::chrono::steady_clock::now() + 10s;
        while (!port_open(client) && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(20ms);
    }
    ~etcd_process() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        if (!dir.empty()) std::filesystem::remove_all(dir);
    }
    bool up() const { return pid > 0 && port_open(client); }
    // etcdctl, blocking: the test's event loop stands still meanwhile.
    int ctl(const std::string& args) const {
        const auto cmd =
            "ETCDCTL_API=3 /usr/bin/etcdctl --endpoints=" + url + " " + args + " > /dev/null 2>&1";
        return std::system(cmd.c_str());
    }

    std::filesystem::path dir;
    pid_t pid = -1;
    int client = 0;
    std::string url;
};

struct instance {
    instance(asio::io_context& ioc, const std::string& url, const std::string& id) {
        config::cluster settings;
        settings.etcd = {url};
        settings.name = "t";
        settings.instance = id;
        member::hooks h;
        h.on_release = [this](const shared_release& r, std::vector<gating::event> e, origin) {
            seen = r;
            events += e.size();
        };
        h.initial_release = [] {
            shared_release r;
            r.rollout.stable = "blue";
            r.rollout.canary = "green";
            return r;
        };
        h.make_report = [] { return report{}; };
        h.on_role = [] {};
        m = std::make_unique<member>(ioc, settings, 200ms, std::move(h));
        m->start();
    }
    std::unique_ptr<member> m;
    std::optional<shared_release> seen;
    std::size_t events = 0;
};

struct member_fixture : ::testing::Test {
    void SetUp() override {
        if (!etcd.up()) GTEST_SKIP() << "etcd is not installed or did not start";
    }
    template <class Pred>
    bool run_until(Pred done, std::chrono::milliseconds bound = 8000ms) {
        const auto until = std::chrono::steady_clock::now() + bound;
        ioc.restart();
        while (!done() && std::chrono::steady_clock::now() < until)
            ioc.run_one_for(10ms);
        return done();
    }
    // Runs the coroutine `write` on the loop and waits for its answer.
    std::string write(member& m, shared_release next, bool as_leader) {
        std::optional<std::string> answer;
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                std::vector<gating::event> events{gating::make_event(
                    1, gating::event_kind::weight, gating::event_by::operator_, "test")};
                answer = co_await m.write(next, events, as_leader);
            },
            asio::detached);
        EXPECT_TRUE(run_until([&] { return answer.has_value(); }));
        return answer.value_or("no answer");
    }

    etcd_process etcd;
    asio::io_context ioc;
};

TEST_F(member_fixture, FirstCampaignerLeadsAndEveryWriteReachesAll) {
    instance a(ioc, etcd.url, "a");
    ASSERT_TRUE(run_until([&] { return a.m->leader(); }));
    instance b(ioc, etcd.url, "b");
    ASSERT_TRUE(run_until([&] { return b.m->etcd_up() && b.m->leader_id() == "a" && b.seen; }));
    EXPECT_FALSE(b.m->leader());

    auto next = *b.seen;
    next.rollout.canary_bp = 2000;
    EXPECT_EQ(write(*b.m, next, false), "");  // an operator's command, on any instance
    ASSERT_TRUE(run_until([&] { return a.seen && a.seen->rollout.canary_bp == 2000; }));
    EXPECT_EQ(a.seen->event_seq, 1u);
    EXPECT_EQ(a.events, 1u);
    // A follower's write as leader is refused before it reaches etcd.
    EXPECT_NE(write(*b.m, next, true), "");
}

TEST_F(member_fixture, StaleRevisionIsRefused) {
    instance a(ioc, etcd.url, "a");
    instance b(ioc, etcd.url, "b");
    // Started together: either may lead.
    ASSERT_TRUE(run_until([&] { return a.seen && b.seen && (a.m->leader() || b.m->leader()); }));
    auto& leader = a.m->leader() ? a : b;
    auto& follower = a.m->leader() ? b : a;
    auto next = *leader.seen;
    next.rollout.canary_bp = 500;
    // Both start from the same revision (the loop does not run between the two starts):
    // whichever reaches etcd second is refused.
    std::optional<std::string> first, second;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> { first = co_await follower.m->write(next, {}, false); },
        asio::detached);
    asio::co_spawn(
        ioc, [&]() -> asio::awaitable<void> { second = co_await leader.m->write(next, {}, true); },
        asio::detached);
    ASSERT_TRUE(run_until([&] { return first && second; }));
    EXPECT_NE(first->empty(), second->empty()) << *first << " / " << *second;
    const auto& refused = first->empty() ? *second : *first;
    EXPECT_NE(refused.find("refused by etcd"), std::string::npos) << refused;
    EXPECT_EQ(a.m->refused_writes() + b.m->refused_writes(), 1u);
}

TEST_F(member_fixture, DeposedLeadersWriteIsRefusedByEtcd) {
    instance a(ioc, etcd.url, "a");
    ASSERT_TRUE(run_until([&] { return a.m->leader() && a.seen; }));
    instance b(ioc, etcd.url, "b");
    ASSERT_TRUE(run_until([&] { return b.m->leader_id() == "a" && b.seen; }));

    // a's election key goes (as when its lease lapses) while a's loop stands still: a
    // still believes it leads when it writes, and etcd's guard must refuse the write.
    ASSERT_EQ(etcd.ctl("del /veer/t/election/a"), 0);
    ASSERT_TRUE(a.m->leader());
    auto next = *a.seen;
    next.rollout.canary_bp = 5000;
    const auto answer = write(*a.m, next, true);
    EXPECT_NE(answer.find("refused by etcd"), std::string::npos) << answer;
    EXPECT_EQ(a.m->refused_writes(), 1u);

    // b takes over; a campaigns again behind it; b's guarded write goes through.
    ASSERT_TRUE(run_until([&] {
        return b.m->leader() && a.m->etcd_up() && a.m->leader_id() == "b" && !a.m->leader();
    }));
    EXPECT_EQ(write(*b.m, next, true), "");
    ASSERT_TRUE(run_until([&] { return a.seen && a.seen->rollout.canary_bp == 5000; }));
}

TEST_F(member_fixture, EtcdGoneAndBackIsNoticedAndReadAgain) {
    instance a(ioc, etcd.url, "a");
    ASSERT_TRUE(run_until([&] { return a.m->leader() && a.seen; }));
    ::kill(etcd.pid, SIGSTOP);  // unreachable without closing its sockets: deadlines must fire
    EXPECT_TRUE(run_until([&] { return !a.m->etcd_up(); }, 4000ms));
    ::kill(etcd.pid, SIGCONT);
    EXPECT_TRUE(run_until([&] { return a.m->etcd_up() && a.m->leader(); }));
}

}  // namespace
}  // namespace veer::cluster
