// Hostile and broken clients against the in-process server, with a raw UDP
// socket: traversal in every spelling, WRQ, bad options, duplicate and stray
// ACKs, garbage, and clients that vanish. Waits are bounded polls, never
// sleeps that a slow machine could outrun.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "base/unique_fd.h"
#include "tftp/server.h"

namespace isoboot::tftp {
namespace {

class Client {
 public:
  // `from`: the client's own address; any of 127.0.0.0/8 is local, so tests
  // play many hosts.
  explicit Client(uint16_t server_port, const char* from = "127.0.0.1", int wait_s = 10)
      : server_port_(server_port) {
    fd_.Reset(::socket(AF_INET, SOCK_DGRAM, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, from, &a.sin_addr);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{wait_s, 0};  // bound on every wait
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void SendTo(uint16_t port, std::span<const uint8_t> bytes) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    ::sendto(fd_.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  void Send(const Packet& p, uint16_t port = 0) {
    std::vector<uint8_t> out;
    Append(p, out);
    SendTo(port ? port : server_port_, out);
  }
  void SendRaw(const std::string& bytes) {
    SendTo(server_port_, std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  }
  // The next packet's description, remembering the sender's port (the TID).
  std::string Receive() {
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd_.get(), buf_.data(), buf_.size(), 0,
                           reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) return "timeout";
    tid_ = ntohs(from.sin_port);
    auto p = Parse(std::span<const uint8_t>(buf_.data(), static_cast<size_t>(n)));
    return p ? Describe(*p) : "unparsable: " + p.error().message;
  }
  uint16_t tid() const { return tid_; }
  void Close() { fd_.Reset(); }

 private:
  uint16_t server_port_;
  UniqueFd fd_;
  uint16_t tid_ = 0;
  std::array<uint8_t, 70000> buf_{};
};

// Every case runs with one event loop and with several (the test's
// parameter): displacement, the EMFILE path and the counters then cross
// loops, as requests from different ports land on different loops.
class TftpHostileTest : public ::testing::TestWithParam<unsigned> {
 protected:
  void Start(TransferConfig transfer = {}, ServerConfig config = {}) {
    config.threads = GetParam();
    auto tree = std::make_shared<vfs::Tree>();
    tree->Add("boot/linux", vfs::TextSource(std::string(5000, 'k')));
    config.address = "0.0.0.0";  // reachable from every 127.x address
    config.port = 0;
    config.transfer = transfer;
    config.on_transfer = [this](const TransferRecord& r) {
      std::lock_guard lock(mu_);
      records_.push_back(r);
    };
    server_ = std::make_unique<Server>(
        config, [tree](std::string_view) { return tree; }, NullLogger());
    thread_ = std::thread([this] { server_->Run(); });
  }
  void TearDown() override {
    if (lowered_) ::setrlimit(RLIMIT_NOFILE, &saved_limit_);
    if (!server_) return;
    server_->Stop();
    thread_.join();
  }
  // Polls until `done` holds, for at most 20 s.
  template <typename F>
  bool WaitFor(F done) {
    for (int i = 0; i < 2000; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::vector<TransferRecord> Records() {
    std::lock_guard lock(mu_);
    return records_;
  }

  // Lowers the soft open-file limit so that only `spare` more descriptors
  // can be opened (restored in TearDown).
  void LeaveDescriptors(int spare) {
    // The limit bounds descriptor numbers, not their count: stop it just
    // above the `spare`-th free number.
    int fd = 0;
    for (int free_seen = 0; fd < 65536; ++fd)
      if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF && ++free_seen == spare) break;
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved_limit_), 0);
    rlimit low = saved_limit_;
    low.rlim_cur = static_cast<rlim_t>(fd + 1);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    lowered_ = true;
  }
  // Fetches boot/linux lock-step from `c`; true when all 5000 bytes came.
  static bool Fetch(Client& c) {
    c.Send(Request{false, "boot/linux", "octet", {}});
    for (uint16_t b = 1; b <= 10; ++b) {
      std::string got = c.Receive();
      if (got != fmt::format("DATA {} ({} bytes)", b, b < 10 ? 512 : 392)) {
        ADD_FAILURE() << "block " << b << ": " << got;
        return false;
      }
      c.Send(Ack{b}, c.tid());
    }
    return true;
  }

  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<TransferRecord> records_;
  rlimit saved_limit_{};
  bool lowered_ = false;
};

const std::vector<Option> kLongTimeout = {{"timeout", "255"}};

TEST_P(TftpHostileTest, NothingOutsideTheTreeIsReadable) {
  Start();
  Client c(server_->port());
  for (const std::string& name : std::vector<std::string>{
           "../etc/passwd", "..\\..\\etc\\passwd", "/etc/passwd", "%2e%2e/etc/passwd",
           "%2e%2e%2fetc%2fpasswd", "boot/../../../etc/passwd", "boot/./linux", "boot/linux/",
           "//etc//passwd", "\\etc\\passwd", "....//....//etc/passwd", std::string(1000, 'a'),
           std::string(500, '/') + "etc/passwd", "BOOT/LINUX", "file:///etc/passwd"}) {
    c.Send(Request{false, name, "octet", {}});
    EXPECT_EQ(c.Receive(), "ERROR 1 file not found") << name;
    EXPECT_NE(c.tid(), server_->port()) << "errors come from a new TID";
  }
  // The spellings a ROM may use for a real file work.
  for (std::string name : {"/boot/linux", "\\boot\\linux", "boot//linux"}) {
    c.Send(Request{false, name, "octet", {}});
    EXPECT_EQ(c.Receive(), "DATA 1 (512 bytes)") << name;
    c.Send(ErrorPacket{ErrorCode::kNotDefined, "enough"}, c.tid());
  }
}

TEST_P(TftpHostileTest, MalformedRequestsAreDroppedAndCounted) {
  Start();
  Client c(server_->port());
  std::vector<std::string> bad = {
      "",
      std::string("\0\1", 2),
      std::string("\0\1a\0b\0", 6),  // NUL inside the name: mode "b"
      std::string("\0\1", 2) + std::string(2000, 'a') + std::string("\0octet\0", 7),  // over-long
      std::string("\0\4\0\1", 4),                // ACK to port 69
      std::string("\0\3\0\1data", 8),            // DATA to port 69
      std::string("\0\x09\0\1", 4),              // unknown opcode
      std::string("\0\1f\0octet\0blksize", 17),  // option without value
  };
  for (const auto& b : bad)
    c.SendRaw(b);
  EXPECT_TRUE(WaitFor([&] { return server_->stats().bad_packets >= bad.size(); }))
      << server_->stats().bad_packets;
  // Still serving.
  c.Send(Request{false, "boot/linux", "octet", {}});
  EXPECT_EQ(c.Receive(), "DATA 1 (512 bytes)");
}

// Garbage from 100 source ports (spread over the loops by the kernel) is
// dropped and counted wherever it lands, and every loop keeps serving.
TEST_P(TftpHostileTest, GarbageFromManyPortsIsCountedOnEveryLoop) {
  Start();
  EXPECT_EQ(server_->stats().threads, GetParam());
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 100; ++i) {
    clients.push_back(std::make_unique<Client>(server_->port()));
    clients.back()->SendRaw(std::string("\0\x09\0\1", 4));  // unknown opcode
    clients.back()->SendRaw(std::string("\0\4\0\1", 4));    // ACK to port 69
  }
  EXPECT_TRUE(WaitFor([&] { return server_->stats().bad_packets >= 200; }))
      << server_->stats().bad_packets;
  for (int i = 0; i < 100; i += 10)
    EXPECT_TRUE(Fetch(*clients[i])) << i;
  EXPECT_TRUE(WaitFor([&] { return server_->stats().completed == 10; }));
  auto s = server_->stats();
  EXPECT_EQ(s.bad_packets, 200u);
  EXPECT_EQ(s.requests, 10u);
  EXPECT_EQ(s.active, 0u);
}

TEST_P(TftpHostileTest, WriteRequestIsRefused) {
  Start();
  Client c(server_->port());
  c.Send(Request{true, "boot/linux", "octet", {}});
  EXPECT_EQ(c.Receive(), "ERROR 2 read-only server: writes are not accepted");
  c.Send(Request{true, "new-file", "octet", {{"tsize", "100"}}});
  EXPECT_EQ(c.Receive(), "ERROR 2 read-only server: writes are not accepted");
}

TEST_P(TftpHostileTest, UnknownAndOutOfRangeOptionsAreLeftOut) {
  Start();
  Client c(server_->port());
  c.Send(Request{
      false,
      "boot/linux",
      "octet",
      {{"blksize", "7"}, {"windowsize", "0"}, {"timeout", "300"}, {"multicast", ""}, {"x", "y"}}});
  EXPECT_EQ(c.Receive(), "DATA 1 (512 bytes)");  // nothing understood: no OACK
  Client c2(server_->port());  // a new port: the same one would be a repeated request
  c2.Send(Request{false,
                  "boot/linux",
                  "octet",
                  {{"blksize", "100000"}, {"windowsize", "999999"}, {"tsize", "0"}}});
  EXPECT_EQ(c2.Receive(), "OACK blksize=1468 tsize=5000");
}

TEST_P(TftpHostileTest, DuplicateAndStrayAcksAreNotAnswered) {
  TransferConfig t;
  t.initial_timeout = std::chrono::seconds(30);  // no retransmission during the test
  Start(t);
  Client c(server_->port());
  c.Send(Request{false, "boot/linux", "octet", {}});
  EXPECT_EQ(c.Receive(), "DATA 1 (512 bytes)");
  uint16_t tid = c.tid();
  c.Send(Ack{1}, tid);
  EXPECT_EQ(c.Receive(), "DATA 2 (512 bytes)");
  c.Send(Ack{1}, tid);  // duplicate
  c.Send(Ack{1}, tid);
  c.Send(Ack{700}, tid);  // stray
  c.Send(Data{1, {}}, tid);
  c.Send(Ack{2}, tid);
  // Had any of those been answered, DATA 2 (or 3) would come twice.
  EXPECT_EQ(c.Receive(), "DATA 3 (512 bytes)");
  for (uint16_t b = 3; b <= 9; ++b) {
    c.Send(Ack{b}, tid);
    EXPECT_EQ(c.Receive(),
              b < 9 ? fmt::format("DATA {} (512 bytes)", b + 1) : "DATA 10 (392 bytes)");
  }
  c.Send(Ack{10}, tid);
  EXPECT_TRUE(WaitFor([&] { return server_->stats().completed == 1; }));
  EXPECT_EQ(server_->stats().active, 0u);
}

TEST_P(TftpHostileTest, VanishedClientsDoNotLeaveTransfersRunning) {
  TransferConfig t;
  t.initial_timeout = std::chrono::milliseconds(20);
  t.max_timeout = std::chrono::milliseconds(40);
  t.max_retries = 2;
  Start(t);
  {
    Client silent(server_->port());  // stays open, never answers
    silent.Send(Request{false, "boot/linux", "octet", {}});
    EXPECT_EQ(silent.Receive(), "DATA 1 (512 bytes)");
    EXPECT_TRUE(WaitFor([&] { return Records().size() == 1; }));
  }
  Client gone(server_->port());  // closes its port: ICMP port unreachable
  gone.Send(Request{false, "boot/linux", "octet", {{"tsize", "0"}}});
  EXPECT_EQ(gone.Receive(), "OACK tsize=5000");
  gone.Close();
  EXPECT_TRUE(WaitFor([&] { return Records().size() == 2; }));
  auto recs = Records();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].outcome, Outcome::kTimedOut);
  EXPECT_EQ(recs[0].retransmits, 2u);
  EXPECT_TRUE(recs[1].outcome == Outcome::kAborted || recs[1].outcome == Outcome::kTimedOut);
  EXPECT_EQ(server_->stats().active, 0u);
}

TEST_P(TftpHostileTest, RepeatedRequestDoesNotStartASecondTransfer) {
  TransferConfig t;
  t.initial_timeout = std::chrono::seconds(30);
  Start(t);
  Client c(server_->port());
  c.Send(Request{false, "boot/linux", "octet", {}});
  c.Send(Request{false, "boot/linux", "octet", {}});
  EXPECT_EQ(c.Receive(), "DATA 1 (512 bytes)");
  EXPECT_TRUE(WaitFor([&] { return server_->stats().duplicate_requests == 1; }));
  EXPECT_EQ(server_->stats().active, 1u);
}

// A tsize probe ended with ERROR 8, then the real request from the same
// port at once (as some PXE ROMs do): the ERROR still waiting in the
// transfer's socket must not make the new request look like a repeat.
TEST_P(TftpHostileTest, RequestRightAfterAnErrorFromTheSamePortIsServed) {
  TransferConfig t;
  t.initial_timeout = std::chrono::seconds(30);  // an ignored request would time the test out
  Start(t);
  Client c(server_->port());
  for (int i = 0; i < 20; ++i) {
    c.Send(Request{false, "boot/linux", "octet", {{"tsize", "0"}}});
    ASSERT_EQ(c.Receive(), "OACK tsize=5000") << i;
    c.Send(ErrorPacket{ErrorCode::kOptionRefused, "tsize probe"}, c.tid());
  }
  c.Send(Request{false, "boot/linux", "octet", {}});
  EXPECT_EQ(c.Receive(), "DATA 1 (512 bytes)");
  EXPECT_TRUE(WaitFor([&] { return server_->stats().failed == 20; }));
  auto s = server_->stats();
  EXPECT_EQ(s.requests, 21u);
  EXPECT_EQ(s.duplicate_requests, 0u);
  EXPECT_EQ(s.active, 1u);
}

TEST_P(TftpHostileTest, TimeoutOverTheMaximumIsDeclined) {
  Start();
  Client c(server_->port());
  c.Send(Request{false, "boot/linux", "octet", {{"timeout", "255"}, {"tsize", "0"}}});
  EXPECT_EQ(c.Receive(), "OACK tsize=5000");
}

TEST_P(TftpHostileTest, NonPrintableFileNamesAreRefused) {
  Start();
  Client c(server_->port());
  c.Send(Request{false, "boot/linux\nsent boot/linux to 10.0.0.1", "octet", {}});
  EXPECT_EQ(c.Receive(), "ERROR 1 illegal file name");
  EXPECT_TRUE(WaitFor([&] { return Records().size() == 1; }));
  EXPECT_EQ(Records()[0].outcome, Outcome::kRejected);
}

// One host sends 60 requests asking for timeout=255 and never ACKs: it gets
// its share (4) and its requests displace only each other; a real client on
// another address is served meanwhile.
TEST_P(TftpHostileTest, UnacknowledgedFloodFromOneAddressStaysInItsShare) {
  ServerConfig config;
  config.max_transfers = 16;
  config.max_transfers_per_client = 4;
  Start({}, config);
  std::vector<std::unique_ptr<Client>> flood;
  for (int i = 0; i < 60; ++i) {
    flood.push_back(std::make_unique<Client>(server_->port(), "127.0.0.2"));
    flood.back()->Send(Request{false, "boot/linux", "octet", kLongTimeout});
  }
  ASSERT_TRUE(WaitFor([&] { return server_->stats().requests == 60; }));
  auto s = server_->stats();
  EXPECT_LE(s.active, 4u);
  EXPECT_GE(s.displaced, 56u);
  EXPECT_EQ(s.busy + s.client_busy, 0u);
  Client real(server_->port(), "127.0.0.1");
  EXPECT_TRUE(Fetch(real));
  EXPECT_TRUE(WaitFor([&] { return server_->stats().completed == 1; }));
}

// Spoofed requests from 100 addresses (a per-address share cannot hold them)
// fill the table; a real client's request displaces the oldest of them.
TEST_P(TftpHostileTest, SpoofedFloodFromManyAddressesDoesNotLockOutARealClient) {
  ServerConfig config;
  config.max_transfers = 8;
  Start({}, config);
  std::vector<std::unique_ptr<Client>> flood;
  for (int i = 1; i <= 100; ++i) {
    std::string from = fmt::format("127.0.1.{}", i);
    flood.push_back(std::make_unique<Client>(server_->port(), from.c_str()));
    flood.back()->Send(Request{false, "boot/linux", "octet", kLongTimeout});
  }
  ASSERT_TRUE(WaitFor([&] { return server_->stats().requests == 100; }));
  EXPECT_EQ(server_->stats().active, 8u);
  Client real(server_->port(), "127.0.0.1");
  EXPECT_TRUE(Fetch(real));
  EXPECT_TRUE(WaitFor([&] { return server_->stats().completed == 1; }));
  auto s = server_->stats();
  EXPECT_GE(s.displaced, 93u);
  EXPECT_EQ(s.busy, 0u);
}

// A share full of transfers that were acknowledged is a real client's:
// more requests from that address get "server busy", from port 69 (no
// descriptor spent), while other addresses are served.
TEST_P(TftpHostileTest, AShareOfAcknowledgedTransfersRefusesWithBusy) {
  TransferConfig t;
  t.initial_timeout = std::chrono::seconds(30);
  ServerConfig config;
  config.max_transfers_per_client = 2;
  Start(t, config);
  Client a(server_->port(), "127.0.0.3"), b(server_->port(), "127.0.0.3");
  for (Client* c : {&a, &b}) {
    c->Send(Request{false, "boot/linux", "octet", {}});
    EXPECT_EQ(c->Receive(), "DATA 1 (512 bytes)");
    c->Send(Ack{1}, c->tid());
    EXPECT_EQ(c->Receive(), "DATA 2 (512 bytes)");
  }
  Client third(server_->port(), "127.0.0.3");
  third.Send(Request{false, "boot/linux", "octet", {}});
  EXPECT_EQ(third.Receive(), "ERROR 0 server busy, try again");
  EXPECT_EQ(third.tid(), server_->port());
  EXPECT_EQ(server_->stats().client_busy, 1u);
  Client other(server_->port(), "127.0.0.4");
  EXPECT_TRUE(Fetch(other));
}

// Out of descriptors (EMFILE): a request takes the descriptor of a transfer
// that was never acknowledged; when every transfer was, it is answered
// "out of resources" from port 69, and the server keeps serving.
TEST_P(TftpHostileTest, OutOfDescriptorsDisplacesOrAnswersFromTheListeningPort) {
  TransferConfig t;
  t.initial_timeout = std::chrono::seconds(30);
  Start(t);
  Client silent1(server_->port(), "127.0.0.5"), silent2(server_->port(), "127.0.0.6");
  Client real(server_->port(), "127.0.0.7"), late(server_->port(), "127.0.0.8");
  Client after(server_->port(), "127.0.0.9"), again(server_->port(), "127.0.0.9");
  LeaveDescriptors(2);
  silent1.Send(Request{false, "boot/linux", "octet", {}});
  EXPECT_EQ(silent1.Receive(), "DATA 1 (512 bytes)");
  silent2.Send(Request{false, "boot/linux", "octet", {}});
  EXPECT_EQ(silent2.Receive(), "DATA 1 (512 bytes)");
  // No descriptor left: silent1's (the oldest never acknowledged) is taken.
  real.Send(Request{false, "boot/linux", "octet", {}});
  EXPECT_EQ(real.Receive(), "DATA 1 (512 bytes)");
  EXPECT_NE(real.tid(), server_->port());
  real.Send(Ack{1}, real.tid());
  EXPECT_EQ(real.Receive(), "DATA 2 (512 bytes)");
  EXPECT_EQ(server_->stats().displaced, 1u);
  // silent2 now gives way too, then nothing unacknowledged is left.
  late.Send(Request{false, "boot/linux", "octet", {}});
  EXPECT_EQ(late.Receive(), "DATA 1 (512 bytes)");
  late.Send(Ack{1}, late.tid());
  EXPECT_EQ(late.Receive(), "DATA 2 (512 bytes)");
  after.Send(Request{false, "boot/linux", "octet", {}});
  EXPECT_EQ(after.Receive(), "ERROR 0 server out of resources, try again");
  EXPECT_EQ(after.tid(), server_->port());
  EXPECT_EQ(server_->stats().no_socket, 1u);
  // The acknowledged transfers finish; their descriptors serve new requests.
  for (uint16_t b = 2; b <= 10; ++b) {
    real.Send(Ack{b}, real.tid());
    if (b < 10) {
      EXPECT_EQ(real.Receive(), fmt::format("DATA {} ({} bytes)", b + 1, b < 9 ? 512 : 392));
    }
  }
  EXPECT_TRUE(WaitFor([&] { return server_->stats().completed == 1; }));
  EXPECT_TRUE(Fetch(again));
}

INSTANTIATE_TEST_SUITE_P(Loops, TftpHostileTest, ::testing::Values(1u, 4u),
                         [](const auto& info) { return fmt::format("{}loops", info.param); });

}  // namespace
}  // namespace isoboot::tftp
