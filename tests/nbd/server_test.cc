#include "nbd/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/unique_fd.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"

namespace isoboot::nbd {
namespace {

// A minimal client written from proto.md, for what real clients never send.
class RawClient {
 public:
  explicit RawClient(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{10, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    connected_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  bool connected() const { return connected_; }
  void Send(const std::vector<uint8_t>& b) {
    ASSERT_EQ(::send(fd_.get(), b.data(), b.size(), MSG_NOSIGNAL), static_cast<ssize_t>(b.size()));
  }
  // Exactly n bytes, or fewer if the server closed.
  std::vector<uint8_t> Recv(size_t n) {
    std::vector<uint8_t> out(n);
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::recv(fd_.get(), out.data() + got, n - got, 0);
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    out.resize(got);
    return out;
  }
  bool Closed() {
    uint8_t b;
    return ::recv(fd_.get(), &b, 1, 0) <= 0;
  }
  OptionReply Reply(std::vector<uint8_t>& storage) {
    storage = Recv(kOptionReplyHeaderSize);
    EXPECT_EQ(storage.size(), kOptionReplyHeaderSize);
    uint32_t length = (storage[16] << 24) | (storage[17] << 16) | (storage[18] << 8) | storage[19];
    auto rest = Recv(length);
    storage.insert(storage.end(), rest.begin(), rest.end());
    auto r = ParseOptionReply(storage);
    EXPECT_TRUE(r);
    return r ? *r : OptionReply{};
  }
  void Greet(uint32_t flags = kClientFixedNewstyle | kClientNoZeroes) {
    auto g = Recv(kGreetingSize);
    ASSERT_TRUE(ParseGreeting(g));
    Send({static_cast<uint8_t>(flags >> 24), static_cast<uint8_t>(flags >> 16),
          static_cast<uint8_t>(flags >> 8), static_cast<uint8_t>(flags)});
  }
  void Option(uint32_t option, const std::vector<uint8_t>& data) {
    std::vector<uint8_t> out;
    AppendOption(option, data, out);
    Send(out);
  }
  // Greets, optionally negotiates structured replies, and goes to `name`.
  void Go(const std::string& name, bool structured) {
    Greet();
    std::vector<uint8_t> storage;
    if (structured) {
      Option(kOptStructuredReply, {});
      ASSERT_EQ(Reply(storage).type, kRepAck);
    }
    std::vector<uint8_t> data;
    AppendInfoRequest({name, {}}, data);
    Option(kOptGo, data);
    for (int i = 0; i < 8; ++i) {
      auto r = Reply(storage);
      if (r.type == kRepAck) return;
      ASSERT_EQ(r.type, kRepInfo);
    }
    FAIL() << "no NBD_REP_ACK";
  }
  void Request(uint16_t type, uint64_t offset, uint32_t length, uint64_t cookie = 1) {
    std::vector<uint8_t> out;
    AppendRequest({0, type, cookie, offset, length}, out);
    Send(out);
  }

 private:
  UniqueFd fd_;
  bool connected_ = false;
};

class NbdServer : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = test::RandomBytes(3 * 65536 + 123, 7);
    test::WriteFile(dir_ / "disk.img", data_);
    std::vector<Export> exports;
    exports.push_back({"disk", "a disk", *vfs::HostFileSource((dir_ / "disk.img").string()), {}});
    exports.push_back({"text", "", vfs::TextSource("hello, nbd\n"), {}});
    // A rebuilt image: connections read what `current` gives when they
    // connect, unless its size is not the one clients were told.
    exports.push_back({"current", "", vfs::TextSource("old bytes\n"), [this] {
                         std::lock_guard lock(current_mu_);
                         return current_;
                       }});
    ServerOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.handshake_timeout = std::chrono::milliseconds(500);
    o.max_connections_per_client = 8;
    server_ = std::make_unique<Server>(std::move(exports), o, NullLogger());
    thread_ = std::thread([this] { server_->Run(); });
  }
  void TearDown() override {
    server_->Stop();
    thread_.join();
  }
  std::string Url(const std::string& name) {
    return "nbd://127.0.0.1:" + std::to_string(server_->port()) + "/" + name;
  }

  std::string ReadText(const std::string& name, uint32_t length) {
    RawClient c(server_->port());
    c.Go(name, false);
    c.Request(kCmdRead, 0, length);
    auto reply = c.Recv(kSimpleReplySize + length);
    if (reply.size() != kSimpleReplySize + length) return "";
    return std::string(reply.begin() + kSimpleReplySize, reply.end());
  }

  test::TempDir dir_{"nbd-server"};
  std::string data_;
  std::mutex current_mu_;
  vfs::SourcePtr current_;  // guarded by current_mu_
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(NbdServer, SimpleAndStructuredReads) {
  for (bool structured : {false, true}) {
    RawClient c(server_->port());
    ASSERT_TRUE(c.connected());
    c.Go("disk", structured);
    c.Request(kCmdRead, 65530, 1000, 42);
    size_t header = structured ? kChunkHeaderSize + 8 : kSimpleReplySize;
    auto reply = c.Recv(header + 1000);
    ASSERT_EQ(reply.size(), header + 1000);
    if (structured) {
      auto h = ParseChunkHeader(reply);
      ASSERT_TRUE(h);
      EXPECT_EQ(h->type, kReplyTypeOffsetData);
      EXPECT_EQ(h->flags, kReplyFlagDone);
      EXPECT_EQ(h->cookie, 42u);
      EXPECT_EQ(h->length, 1008u);
    } else {
      auto s = ParseSimpleReply(reply);
      ASSERT_TRUE(s);
      EXPECT_EQ(s->error, 0u);
      EXPECT_EQ(s->cookie, 42u);
    }
    EXPECT_EQ(std::string(reply.begin() + header, reply.end()), data_.substr(65530, 1000));
    c.Request(kCmdDisc, 0, 0);
    EXPECT_TRUE(c.Closed());
  }
  EXPECT_EQ(server_->Stats().bytes_read, 2000u);
}

TEST_F(NbdServer, GeneratedSourceIsReadWithoutAFile) {
  RawClient c(server_->port());
  c.Go("text", false);
  c.Request(kCmdRead, 7, 4);
  auto reply = c.Recv(kSimpleReplySize + 4);
  ASSERT_EQ(reply.size(), kSimpleReplySize + 4);
  EXPECT_EQ(std::string(reply.begin() + kSimpleReplySize, reply.end()), "nbd\n");
}

TEST_F(NbdServer, NewConnectionsReadTheCurrentSourceOfTheSameSize) {
  EXPECT_EQ(ReadText("current", 10), "old bytes\n");  // null: the first source
  {
    std::lock_guard lock(current_mu_);
    current_ = vfs::TextSource("new bytes\n");
  }
  EXPECT_EQ(ReadText("current", 10), "new bytes\n");
  {
    std::lock_guard lock(current_mu_);
    current_ = vfs::TextSource("longer bytes\n");
  }
  EXPECT_EQ(ReadText("current", 10), "old bytes\n");
}

TEST_F(NbdServer, RefusedCommandsKeepTheConnection) {
  RawClient c(server_->port());
  c.Go("disk", true);
  // A write's payload is read and dropped, then EPERM.
  std::vector<uint8_t> out;
  AppendRequest({0, kCmdWrite, 5, 0, 512}, out);
  out.resize(out.size() + 512, 0xee);
  c.Send(out);
  auto s = ParseSimpleReply(c.Recv(kSimpleReplySize));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->error, kEperm);
  EXPECT_EQ(s->cookie, 5u);
  // Past the end and 2^32-1 bytes: an error chunk, nothing allocated.
  for (auto [offset, length] :
       {std::pair<uint64_t, uint32_t>{data_.size() - 1, 2}, {0, 0xffffffff}}) {
    c.Request(kCmdRead, offset, length, 6);
    auto h = c.Recv(kChunkHeaderSize);
    auto chunk = ParseChunkHeader(h);
    ASSERT_TRUE(chunk);
    EXPECT_EQ(chunk->type, kReplyTypeError);
    auto e = ParseErrorPayload(chunk->type, c.Recv(chunk->length));
    ASSERT_TRUE(e);
    EXPECT_EQ(e->error, kEinval);
  }
  c.Request(77, 0, 0, 8);
  EXPECT_EQ(ParseSimpleReply(c.Recv(kSimpleReplySize))->error, kEinval);
  c.Request(kCmdFlush, 0, 0, 9);
  EXPECT_EQ(ParseSimpleReply(c.Recv(kSimpleReplySize))->error, 0u);
  // Still serving.
  c.Request(kCmdRead, 0, 16, 10);
  auto reply = c.Recv(kChunkHeaderSize + 8 + 16);
  EXPECT_EQ(std::string(reply.end() - 16, reply.end()), data_.substr(0, 16));
  EXPECT_EQ(server_->Stats().bad_requests, 4u);
}

TEST_F(NbdServer, HandshakeRefusals) {
  {
    RawClient c(server_->port());  // not fixed newstyle
    c.Greet(0);
    EXPECT_TRUE(c.Closed());
  }
  {
    RawClient c(server_->port());  // option data over the limit
    c.Greet();
    std::vector<uint8_t> out;
    AppendOption(kOptGo, {}, out);
    out[12] = 0x7f;  // length 0x7f000000
    c.Send(out);
    EXPECT_TRUE(c.Closed());
  }
  {
    RawClient c(server_->port());  // unknown option, then unknown export
    c.Greet();
    std::vector<uint8_t> storage;
    c.Option(1234, {});
    EXPECT_EQ(c.Reply(storage).type, kRepErrUnsup);
    // A metadata context before structured replies: refused and counted.
    std::vector<uint8_t> meta;
    AppendMetaContextRequest({"disk", {kBaseAllocation}}, meta);
    c.Option(kOptSetMetaContext, meta);
    EXPECT_EQ(c.Reply(storage).type, kRepErrInvalid);
    std::vector<uint8_t> data;
    AppendInfoRequest({"nope", {}}, data);
    c.Option(kOptGo, data);
    EXPECT_EQ(c.Reply(storage).type, kRepErrUnknown);
    c.Option(kOptAbort, {});
    EXPECT_EQ(c.Reply(storage).type, kRepAck);
    EXPECT_TRUE(c.Closed());
  }
  {
    RawClient c(server_->port());  // silent: dropped at the deadline
    EXPECT_EQ(c.Recv(kGreetingSize).size(), kGreetingSize);
    EXPECT_TRUE(c.Closed());
  }
  ServerStats s = server_->Stats();
  EXPECT_EQ(s.handshake_failures, 1u);
  EXPECT_EQ(s.handshake_timeouts, 1u);
  EXPECT_EQ(s.bad_options, 4u);
}

TEST_F(NbdServer, BlockStatusOfGeneratedContentIsData) {
  RawClient c(server_->port());
  c.Greet();
  std::vector<uint8_t> storage, meta;
  c.Option(kOptStructuredReply, {});
  ASSERT_EQ(c.Reply(storage).type, kRepAck);
  AppendMetaContextRequest({"text", {kBaseAllocation}}, meta);
  c.Option(kOptSetMetaContext, meta);
  auto r = c.Reply(storage);
  ASSERT_EQ(r.type, kRepMetaContext);
  ASSERT_EQ(c.Reply(storage).type, kRepAck);
  std::vector<uint8_t> data;
  AppendInfoRequest({"text", {}}, data);
  c.Option(kOptGo, data);
  while (c.Reply(storage).type != kRepAck) {
  }
  c.Request(kCmdBlockStatus, 2, 9, 5);
  auto header = c.Recv(kChunkHeaderSize);
  auto chunk = ParseChunkHeader(header);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->type, kReplyTypeBlockStatus);
  EXPECT_EQ(chunk->flags, kReplyFlagDone);
  EXPECT_EQ(chunk->cookie, 5u);
  auto payload = ParseBlockStatusPayload(c.Recv(chunk->length));
  ASSERT_TRUE(payload);
  EXPECT_EQ(payload->context_id, kBaseAllocationId);
  EXPECT_EQ(payload->descriptors, (std::vector<BlockDescriptor>{{9, 0}}));
  // Past the end: an error chunk, and the connection goes on.
  c.Request(kCmdBlockStatus, 2, 100, 6);
  header = c.Recv(kChunkHeaderSize);
  chunk = ParseChunkHeader(header);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->type, kReplyTypeError);
  auto e = ParseErrorPayload(chunk->type, c.Recv(chunk->length));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->error, kEinval);
  c.Request(kCmdRead, 0, 5, 7);
  header = c.Recv(kChunkHeaderSize);
  chunk = ParseChunkHeader(header);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->type, kReplyTypeOffsetData);
}

TEST_F(NbdServer, PerClientLimit) {
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<RawClient>(server_->port()));
    EXPECT_EQ(clients.back()->Recv(kGreetingSize).size(), kGreetingSize);
  }
  RawClient extra(server_->port());
  EXPECT_TRUE(extra.Recv(kGreetingSize).empty());
  EXPECT_EQ(server_->Stats().refused_per_client, 1u);
}

TEST_F(NbdServer, NbdinfoAndNbdcopyReadIt) {
  auto info = test::RunCommand("nbdinfo --json " + test::Quote(Url("disk")));
  ASSERT_EQ(info.exit_code, 0);
  EXPECT_NE(info.out.find("\"export-size\": " + std::to_string(data_.size())), std::string::npos)
      << info.out;
  EXPECT_NE(info.out.find("\"is_read_only\": true"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("\"can_multi_conn\": true"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("\"block_size_maximum\": 33554432"), std::string::npos) << info.out;
  auto out = dir_ / "copy.img";
  auto copy = test::RunCommand("nbdcopy --connections=4 " + test::Quote(Url("disk")) + " " +
                               test::Quote(out.string()));
  ASSERT_EQ(copy.exit_code, 0);
  EXPECT_EQ(test::ReadFile(out), data_);
}

}  // namespace
}  // namespace isoboot::nbd
