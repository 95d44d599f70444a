// The server's store path (http/store.h) against curl and raw sockets:
// uploads with Content-Length and chunked, Expect: 100-continue, bodies over
// Beast's default 8 MiB limit, refusals before and during the body, uploads
// cut short (the Upload must be destroyed unfinished), GET with ranges.
#include <atomic>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "http/server.h"
#include "tests/http/fixture.h"

namespace isoboot::http::testing {
namespace {

// Records what reaches it. PUT to "refuse" is refused before the body; to
// "small" is refused once more than 1000 bytes arrived.
class RecordingStore : public StoreHandler {
 public:
  struct Finished {
    std::string name;
    std::string body;
    std::optional<uint64_t> content_length;
  };

  std::variant<vfs::SourcePtr, StoreReply> Get(const StoreRequest& r) override {
    if (r.authorization != "Bearer t") return StoreReply{401, "token please", {}};
    return vfs::TextSource("stored:" + r.name + "?" + std::string(r.query));
  }

  std::variant<std::unique_ptr<Upload>, StoreReply> Put(const StoreRequest& r) override {
    if (r.name == "refuse") return StoreReply{403, "refused", {}};
    started++;
    return std::make_unique<Recording>(*this, r.name, r.content_length, r.name == "small");
  }

  std::mutex mu;
  std::vector<Finished> finished;
  std::atomic<int> started{0};
  std::atomic<int> discarded{0};  // Uploads destroyed without Finish

 private:
  class Recording : public Upload {
   public:
    Recording(RecordingStore& store, std::string name, std::optional<uint64_t> length, bool small)
        : store_(store), name_(std::move(name)), length_(length), small_(small) {}
    ~Recording() override {
      if (!done_) store_.discarded++;
    }
    std::optional<StoreReply> Write(std::span<const uint8_t> data) override {
      body_.append(reinterpret_cast<const char*>(data.data()), data.size());
      if (small_ && body_.size() > 1000) return StoreReply{413, "too large", {}};
      return std::nullopt;
    }
    StoreReply Finish() override {
      done_ = true;
      std::lock_guard lock(store_.mu);
      store_.finished.push_back({name_, body_, length_});
      return StoreReply{201, fmt::format("stored {} bytes", body_.size()), {{"Location", name_}}};
    }

   private:
    RecordingStore& store_;
    std::string name_;
    std::optional<uint64_t> length_;
    bool small_;
    bool done_ = false;
    std::string body_;
  };
};

class ServerStoreTest : public ::testing::Test {
 protected:
  ServerStoreTest()
      : store_(std::make_shared<RecordingStore>()), server_(Tree(), Options(store_)) {}
  static std::shared_ptr<const vfs::Tree> Tree() {
    auto tree = std::make_shared<vfs::Tree>();
    tree->Add("plain.txt", vfs::TextSource("plain"));
    return tree;
  }
  static ServerOptions Options(std::shared_ptr<StoreHandler> store) {
    ServerOptions o;
    o.request_timeout = std::chrono::seconds(20);
    o.threads = 2;
    o.store = std::move(store);
    return o;
  }
  // curl ... URL; returns "status body" (the body's first line).
  std::string Curl(const std::string& extra, const std::string& name) {
    std::string out;
    Sh(fmt::format("curl -s -S --max-time 60 -w ' %{{http_code}}' {} '{}' 2>&1", extra,
                   server_.Url(name)),
       &out);
    return out;
  }
  // Polls (bounded: 10 s) until the server has destroyed `n` unfinished
  // uploads; an aborted upload sends no response to wait for.
  bool WaitDiscarded(int n) {
    for (int i = 0; i < 1000 && store_->discarded < n; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return store_->discarded == n;
  }
  RecordingStore::Finished OnlyFinished() {
    std::lock_guard lock(store_->mu);
    EXPECT_EQ(store_->finished.size(), 1u);
    return store_->finished.empty() ? RecordingStore::Finished{} : store_->finished[0];
  }

  TempDir dir_;
  std::shared_ptr<RecordingStore> store_;
  RunningServer server_;
};

TEST_F(ServerStoreTest, PutWithContentLengthOverBeastsDefaultBodyLimit) {
  const std::string data = RandomBytes(12 << 20, 1);
  WriteFile(dir_ / "up", data);
  // curl sends Expect: 100-continue for a body this large and waits for it.
  std::string verbose;
  Sh(fmt::format("curl -s -S -v --max-time 60 -T {} '{}' 2>&1", (dir_ / "up").string(),
                 server_.Url("overlay/node-a")),
     &verbose);
  EXPECT_NE(verbose.find("HTTP/1.1 100 Continue"), std::string::npos) << verbose;
  EXPECT_NE(verbose.find("201 stored 12582912 bytes"), std::string::npos) << verbose;
  auto f = OnlyFinished();
  EXPECT_EQ(f.name, "node-a");
  EXPECT_EQ(f.content_length, std::optional<uint64_t>(data.size()));
  EXPECT_TRUE(f.body == data);
  auto records = server_.RecordsAtLeast(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].method, "PUT");
  EXPECT_EQ(records[0].status, 201u);
  EXPECT_EQ(records[0].received, data.size());
}

TEST_F(ServerStoreTest, PutChunked) {
  const std::string data = RandomBytes(3 << 20, 2);
  WriteFile(dir_ / "up", data);
  // From stdin curl does not know the length and sends chunked.
  EXPECT_EQ(Curl(fmt::format("-H 'Transfer-Encoding: chunked' -T - < {}", (dir_ / "up").string()),
                 "overlay/chunky"),
            "201 stored 3145728 bytes\n 201");
  auto f = OnlyFinished();
  EXPECT_EQ(f.content_length, std::nullopt);
  EXPECT_TRUE(f.body == data);
}

TEST_F(ServerStoreTest, RefusedBeforeTheBodyIsSent) {
  WriteFile(dir_ / "up", RandomBytes(4 << 20, 3));
  EXPECT_EQ(Curl(fmt::format("-T {}", (dir_ / "up").string()), "overlay/refuse"),
            "403 refused\n 403");
  EXPECT_EQ(store_->started, 0);
  auto records = server_.RecordsAtLeast(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].received, 0u);  // the 100 Continue never went out
}

TEST_F(ServerStoreTest, RefusedDuringTheBodyDiscardsTheUpload) {
  WriteFile(dir_ / "up", RandomBytes(2 << 20, 4));
  EXPECT_EQ(Curl(fmt::format("-T {}", (dir_ / "up").string()), "overlay/small"),
            "413 too large\n 413");
  EXPECT_TRUE(WaitDiscarded(1));
  EXPECT_TRUE(store_->finished.empty());
}

TEST_F(ServerStoreTest, ClientGoneMidBodyDiscardsTheUpload) {
  {
    RawClient c(server_.port());
    ASSERT_TRUE(c.Send("PUT /overlay/cut HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" +
                       RandomBytes(70000, 5)));
  }  // closed with 930000 bytes missing
  EXPECT_TRUE(WaitDiscarded(1));
  EXPECT_EQ(store_->started, 1);
  EXPECT_TRUE(store_->finished.empty());
}

TEST_F(ServerStoreTest, BrokenChunkingDiscardsTheUpload) {
  RawClient c(server_.port());
  ASSERT_TRUE(
      c.Send("PUT /overlay/bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "10\r\n0123456789abcdef\r\nZZ\r\n"));
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_TRUE(WaitDiscarded(1));
  EXPECT_TRUE(store_->finished.empty());
}

TEST_F(ServerStoreTest, EmptyBodyAndKeepAliveAfterAnUpload) {
  RawClient c(server_.port());
  ASSERT_TRUE(
      c.Send("PUT /overlay/empty HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
             "GET /plain.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string answer = c.ReadToEnd();
  EXPECT_NE(answer.find("201 stored 0 bytes"), std::string::npos) << answer;
  EXPECT_NE(answer.find("\r\n\r\nplain"), std::string::npos) << answer;
  EXPECT_EQ(OnlyFinished().body, "");
}

TEST_F(ServerStoreTest, GetGoesToTheStoreWithRangesAndQuery) {
  EXPECT_EQ(Curl("", "overlay/n1"), "401 token please\n 401");
  EXPECT_EQ(Curl("-H 'Authorization: Bearer t'", "overlay/n1?key=abc"), "stored:n1?key=abc 200");
  EXPECT_EQ(Curl("-H 'Authorization: Bearer t' -r 7-8", "overlay/n1"), "n1 206");
  EXPECT_EQ(Curl("-X DELETE", "overlay/n1"), "405 method not allowed\n 405");
  EXPECT_EQ(Curl("-T /dev/null", "plain.txt"), "405 method not allowed\n 405");  // tree: read-only
  EXPECT_EQ(Curl("", "plain.txt"), "plain 200");
}

}  // namespace
}  // namespace isoboot::http::testing
