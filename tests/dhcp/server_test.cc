#include "dhcp/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace isoboot::dhcp {
namespace {

// Loopback only: the PXE port answers unicast to the request's source, so it
// needs no interface or broadcast. Broadcast answers on port 67 are covered
// by clients_test.sh inside network namespaces.
class DhcpServerTest : public ::testing::Test {
 protected:
  uint16_t FreePort() {
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
  }

  void Send(int fd, uint16_t port, const std::vector<uint8_t>& bytes) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(
        ::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
        static_cast<ssize_t>(bytes.size()));
  }

  // Waits (bounded) for one datagram.
  std::optional<Message> Receive(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return std::nullopt;
    std::vector<uint8_t> buf(2048);
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) return std::nullopt;
    auto m = Parse(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
    if (!m) return std::nullopt;
    return *m;
  }
};

TEST_F(DhcpServerTest, PxePortAnswersDropsGarbageAndStops) {
  ServerConfig config;
  config.protocol.server_ip = 0x7f000001;
  config.server_port = FreePort();
  config.proxy_port = FreePort();
  std::vector<ClientEvent> events;
  config.on_client = [&](const ClientEvent& c) { events.push_back(c); };
  Server server(config, NullLogger());
  std::thread loop([&] { server.Run(); });

  UniqueFd client(::socket(AF_INET, SOCK_DGRAM, 0));
  Send(client.get(), config.proxy_port, {1, 2, 3});
  Message req;
  req.xid = 77;
  req.chaddr = {2, 0, 0, 0, 0, 9};
  req.ciaddr = 0x7f000001;
  req.SetU8(opt::kMessageType, static_cast<uint8_t>(MessageType::kRequest));
  req.SetString(opt::kVendorClass, "PXEClient:Arch:00007:UNDI:003016");
  std::vector<uint8_t> wire;
  Append(req, wire);
  Send(client.get(), config.proxy_port, wire);

  auto reply = Receive(client.get());
  server.Stop();
  loop.join();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->xid, 77u);
  EXPECT_EQ(reply->Type(), MessageType::kAck);
  EXPECT_EQ(reply->file, "ipxe.efi");
  ServerStats s = server.stats();
  EXPECT_EQ(s.received, 2u);
  EXPECT_EQ(s.dropped_bad, 1u);
  EXPECT_EQ(s.answered, 1u);
  ASSERT_EQ(events.size(), 1u);  // read after join: written on the Run() thread
  EXPECT_TRUE(events[0].is_pxe);
  EXPECT_EQ(events[0].mac, req.Mac());
}

// A relay agent on 127.0.1.1 (another /24 of loopback): its requests get
// their answers at giaddr:server_port, from the range of its subnet, with
// option 82 back; a relay on a subnet without a range is dropped and counted.
TEST_F(DhcpServerTest, RelayedRequestsAnsweredToTheRelayUnknownRelayCounted) {
  ServerConfig config;
  config.protocol.mode = Mode::kFull;
  config.protocol.server_ip = 0x7f000001;
  ASSERT_TRUE(ParseRange("127.0.0.100,127.0.0.120", config.protocol));
  ASSERT_TRUE(ParseRange("127.0.1.100,127.0.1.120", config.protocol));
  config.server_port = FreePort();
  config.proxy_port = 0;
  Server server(config, NullLogger());
  std::thread loop([&] { server.Run(); });

  // The relay listens on its own address, port 67 of the test (the server's
  // socket is on 0.0.0.0, so the more specific address gets the answers).
  UniqueFd relay(::socket(AF_INET, SOCK_DGRAM, 0));
  int one = 1;
  ASSERT_EQ(::setsockopt(relay.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(config.server_port);
  at.sin_addr.s_addr = htonl(0x7f000101);
  ASSERT_EQ(::bind(relay.get(), reinterpret_cast<sockaddr*>(&at), sizeof at), 0);
  auto discover = [](Ip4 giaddr, uint8_t mac_last) {
    Message m;
    m.xid = mac_last;
    m.hops = 1;
    m.giaddr = giaddr;
    m.chaddr = {2, 0, 0, 0, 1, mac_last};
    m.SetU8(opt::kMessageType, static_cast<uint8_t>(MessageType::kDiscover));
    m.Set(opt::kRelayAgentInfo, std::vector<uint8_t>{1, 2, 'x', 'y'});
    std::vector<uint8_t> wire;
    Append(m, wire);
    return wire;
  };
  Send(relay.get(), config.server_port, discover(0x0a090001, 1));  // no range: dropped
  Send(relay.get(), config.server_port, discover(0x7f000101, 2));
  auto reply = Receive(relay.get());
  server.Stop();
  loop.join();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->xid, 2u);
  EXPECT_EQ(reply->Type(), MessageType::kOffer);
  EXPECT_EQ(reply->yiaddr, 0x7f000164u);  // 127.0.1.100
  EXPECT_EQ(reply->giaddr, 0x7f000101u);
  EXPECT_EQ(reply->GetIp(opt::kRouter), 0x7f000101u);
  ASSERT_FALSE(reply->options.empty());
  EXPECT_EQ(reply->options.back(), (Option{opt::kRelayAgentInfo, {1, 2, 'x', 'y'}}));
  ServerStats s = server.stats();
  EXPECT_EQ(s.received, 2u);
  EXPECT_EQ(s.no_range, 1u);
  EXPECT_EQ(s.ignored, 1u);
  EXPECT_EQ(s.relayed, 1u);
  EXPECT_EQ(s.answered, 1u);
}

TEST_F(DhcpServerTest, SetupErrorsSayWhatIsWrong) {
  ServerConfig config;
  config.server_port = FreePort();
  config.proxy_port = 0;
  EXPECT_THROW(Server(config, NullLogger()), std::runtime_error);  // no server IP
  config.protocol.server_ip = 0x7f000001;
  config.protocol.mode = Mode::kFull;
  EXPECT_THROW(Server(config, NullLogger()), std::runtime_error);  // no range
  config.protocol.mode = Mode::kProxy;
  config.interface = "isoboot-no-such-if";
  try {
    Server s(config, NullLogger());
    ADD_FAILURE() << "bound to a missing interface";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("isoboot-no-such-if"), std::string::npos) << e.what();
  }
  config.interface.clear();
  test::TempDir dir("dhcp-server");
  std::string leases = (dir / "bad_leases").string();
  std::ofstream(leases) << "not a lease\n";
  config.lease_file = leases;
  try {
    Server s(config, NullLogger());
    ADD_FAILURE() << "accepted a corrupt lease file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("lease line 1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace isoboot::dhcp
