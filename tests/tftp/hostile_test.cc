// Hostile and broken clients against the in-process server, with a raw UDP
// socket: traversal in every spelling, WRQ, bad options, duplicate and stray
// ACKs, garbage, and clients that vanish. Waits are bounded polls, never
// sleeps that a slow machine could outrun.

#include <arpa/inet.h>
#include <netinet/in.h>
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
  explicit Client(uint16_t server_port) : server_port_(server_port) {
    fd_.Reset(::socket(AF_INET, SOCK_DGRAM, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{10, 0};  // bound on every wait
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

class TftpHostileTest : public ::testing::Test {
 protected:
  void Start(TransferConfig transfer = {}) {
    auto tree = std::make_shared<vfs::Tree>();
    tree->Add("boot/linux", vfs::TextSource(std::string(5000, 'k')));
    ServerConfig config;
    config.address = "127.0.0.1";
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

  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<TransferRecord> records_;
};

TEST_F(TftpHostileTest, NothingOutsideTheTreeIsReadable) {
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

TEST_F(TftpHostileTest, MalformedRequestsAreDroppedAndCounted) {
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

TEST_F(TftpHostileTest, WriteRequestIsRefused) {
  Start();
  Client c(server_->port());
  c.Send(Request{true, "boot/linux", "octet", {}});
  EXPECT_EQ(c.Receive(), "ERROR 2 read-only server: writes are not accepted");
  c.Send(Request{true, "new-file", "octet", {{"tsize", "100"}}});
  EXPECT_EQ(c.Receive(), "ERROR 2 read-only server: writes are not accepted");
}

TEST_F(TftpHostileTest, UnknownAndOutOfRangeOptionsAreLeftOut) {
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

TEST_F(TftpHostileTest, DuplicateAndStrayAcksAreNotAnswered) {
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

TEST_F(TftpHostileTest, VanishedClientsDoNotLeaveTransfersRunning) {
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

TEST_F(TftpHostileTest, RepeatedRequestDoesNotStartASecondTransfer) {
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

}  // namespace
}  // namespace isoboot::tftp
