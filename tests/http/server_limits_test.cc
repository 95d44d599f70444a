// Resource limits against hostile hosts: a per-client-address share of the
// connections, and accept() failing for want of descriptors (EMFILE). Raw
// sockets from other 127.0.0.0/8 addresses play the hostile hosts; every
// wait is bounded.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "http/server.h"
#include "tests/http/fixture.h"

namespace isoboot::http::testing {
namespace {

// A TCP socket bound to `from`, connected to 127.0.0.1:port on Connect().
class Peer {
 public:
  explicit Peer(const char* from) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, from, &a.sin_addr);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Peer() { Close(); }
  bool Connect(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  // True when the server closed the connection (EOF or reset) within 10 s.
  bool Closed() {
    char c;
    ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }
  // Sends a GET and returns the status line (empty if none came).
  std::string Get(const std::string& path) {
    std::string req = fmt::format("GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
      return "";
    std::string got;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd_, buf, sizeof buf, 0)) > 0;)
      got.append(buf, static_cast<size_t>(n));
    return got;
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

template <typename F>
bool WaitFor(F done) {
  for (int i = 0; i < 1000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::shared_ptr<const vfs::Tree> Tree() {
  auto tree = std::make_shared<vfs::Tree>();
  tree->Add("initrd", vfs::TextSource(std::string(300'000, 'i')));
  return tree;
}

TEST(HttpLimits, OneHostGetsItsShareOfConnectionsAndOthersAreServed) {
  ServerOptions o;
  o.max_connections_per_client = 4;
  RunningServer server(Tree(), o);
  std::vector<std::unique_ptr<Peer>> hostile;
  for (int i = 0; i < 10; ++i) {
    hostile.push_back(std::make_unique<Peer>("127.0.0.2"));
    ASSERT_TRUE(hostile.back()->Connect(server.port()));
  }
  ASSERT_TRUE(WaitFor([&] { return server.server().Stats().refused_per_client == 6; }));
  EXPECT_EQ(server.server().CountersFor("127.0.0.2").connections, 4u);
  // The connections over the share were closed at once; the first four stay.
  int closed = 0;
  for (int i = 4; i < 10; ++i)
    closed += hostile[i]->Closed();
  EXPECT_EQ(closed, 6);
  // Another address is served meanwhile.
  Peer real("127.0.0.3");
  ASSERT_TRUE(real.Connect(server.port()));
  std::string got = real.Get("initrd");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 200 OK\r\n")) << got.substr(0, 200);
  EXPECT_TRUE(got.ends_with(std::string(300'000, 'i')));
  // A closed connection gives its place back.
  hostile[0]->Close();
  ASSERT_TRUE(WaitFor([&] { return server.server().CountersFor("127.0.0.2").connections == 3; }));
  Peer again("127.0.0.2");
  ASSERT_TRUE(again.Connect(server.port()));
  EXPECT_TRUE(again.Get("initrd").starts_with("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(server.server().Stats().refused_full, 0u);
}

// The per-address counters are keyed by whoever connects: thousands of
// addresses that come and go leave a bounded table, while an address with a
// connection open keeps its count (its share depends on it).
TEST(HttpLimits, CountersForgetAddressesWithNothingOpen) {
  RunningServer server(Tree(), ServerOptions{});
  Peer stays("127.0.0.6");
  ASSERT_TRUE(stays.Connect(server.port()));
  ASSERT_TRUE(WaitFor([&] { return server.server().CountersFor("127.0.0.6").connections == 1; }));
  constexpr int kAddresses = 9000;  // more than the 8192 the server keeps
  for (int i = 0; i < kAddresses; ++i) {
    std::string from = fmt::format("127.1.{}.{}", i / 250, 1 + i % 250);
    Peer p(from.c_str());
    ASSERT_TRUE(p.Connect(server.port())) << from;
    p.Close();
    // Let the server see the close before the next address (bounded wait).
    if (i % 500 == 499) {
      ASSERT_TRUE(WaitFor([&] { return server.server().Counters().size() <= 8192; }));
    }
  }
  ASSERT_TRUE(WaitFor([&] {
    auto all = server.server().Counters();
    size_t open = 0;
    for (const auto& [ip, c] : all)
      open += c.connections;
    return open == 1;
  }));
  EXPECT_LE(server.server().Counters().size(), 8192u);
  EXPECT_EQ(server.server().CountersFor("127.0.0.6").connections, 1u);
  EXPECT_TRUE(stays.Get("initrd").starts_with("HTTP/1.1 200 OK\r\n"));
}

// A soft limit that leaves exactly `spare` descriptors: the limit bounds
// descriptor numbers, not their count, so it goes just above the
// `spare`-th free number.
rlim_t LimitLeaving(int spare) {
  int fd = 0;
  for (int free_seen = 0; fd < 65536; ++fd)
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF && ++free_seen == spare) break;
  return static_cast<rlim_t>(fd + 1);
}

// accept() failing with EMFILE neither spins nor stops the server: it
// retries, and serves again once descriptors are free.
TEST(HttpLimits, AcceptSurvivesRunningOutOfDescriptors) {
  RunningServer server(Tree(), ServerOptions{});
  std::vector<std::unique_ptr<Peer>> peers;
  for (int i = 0; i < 6; ++i)
    peers.push_back(std::make_unique<Peer>("127.0.0.4"));  // their sockets exist now
  Peer late("127.0.0.5");
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = LimitLeaving(2);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  for (auto& p : peers)
    EXPECT_TRUE(p->Connect(server.port()));  // queued by the kernel
  bool failed = WaitFor([&] { return server.server().Stats().accept_errors > 0; });
  EXPECT_EQ(server.server().CountersFor("127.0.0.4").connections, 2u);
  // The clients go; the queued ones are accepted and closed in turn.
  peers.clear();
  bool drained = WaitFor([&] { return server.server().CountersFor("127.0.0.4").connections == 0; });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past a 100 ms retry
  bool connected = late.Connect(server.port());
  std::string got = connected ? late.Get("initrd") : "";
  ::setrlimit(RLIMIT_NOFILE, &saved);
  EXPECT_TRUE(failed);
  EXPECT_TRUE(drained);
  EXPECT_TRUE(got.starts_with("HTTP/1.1 200 OK\r\n")) << got.substr(0, 200);
}

}  // namespace
}  // namespace isoboot::http::testing
