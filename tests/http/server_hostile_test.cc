// Malformed and hostile clients over raw sockets, while a normal curl client
// keeps downloading: each is answered or dropped, and the normal client's
// bytes stay right. Timeouts are set short here so the test stays quick;
// every wait is bounded.
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "http/server.h"
#include "tests/http/fixture.h"

namespace isoboot::http::testing {
namespace {

using namespace std::chrono_literals;

class HostileTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    served_ = new ServedTree(*dir_);
  }
  static void TearDownTestSuite() {
    delete served_;
    delete dir_;
  }
  HostileTest() : server_(served_->tree, Options()) {}
  static ServerOptions Options() {
    ServerOptions o;
    o.request_timeout = 1s;
    o.send_timeout = 2s;
    o.header_limit = 8192;
    return o;
  }

  // Sends `request` on a new connection and returns all the server sent
  // until it closed.
  std::string Exchange(std::string_view request) {
    RawClient c(server_.port());
    c.Send(request);
    return c.ReadToEnd();
  }

  // A normal client fetching the initrd in a loop while `busy` is set;
  // counts the fetches that came back complete and identical.
  void NormalClient(std::atomic<bool>& busy, int& good, int& bad) {
    const std::string& want = served_->expected.at("boot/x86_64/loader/initrd");
    const std::string out = *dir_ / "normal.out";
    for (int i = 0; i < 200 && (busy || i < 3); ++i) {
      int rc = Sh(fmt::format("curl -s --max-time 60 -o {} '{}'", out,
                              server_.Url("boot/x86_64/loader/initrd")));
      (rc == 0 && ReadFile(out) == want ? good : bad)++;
    }
  }

  static TempDir* dir_;
  static ServedTree* served_;
  RunningServer server_;
};
TempDir* HostileTest::dir_ = nullptr;
ServedTree* HostileTest::served_ = nullptr;

TEST_F(HostileTest, GarbageIsBadRequestAndClosed) {
  for (std::string_view garbage :
       {"GARBAGE\r\n\r\n", "GET\r\n\r\n", "GET / HTTP/9\r\n\r\n", "\x01\x02\x03\x04\r\n\r\n",
        "GET /small.txt HTTP/1.1\r\nHost: x\r\nBad Field\r\n\r\n",
        "GET /small.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"}) {
    std::string reply = Exchange(garbage);
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 400 ")) << garbage << " -> " << reply;
    EXPECT_NE(reply.find("Connection: close\r\n"), std::string::npos);
  }
  // HTTP/1.1 requires Host.
  EXPECT_TRUE(Exchange("GET /small.txt HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 400 "));
  EXPECT_TRUE(Exchange("GET /small.txt HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200 "));
  EXPECT_TRUE(Exchange("GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 400 "));
}

TEST_F(HostileTest, HugeHeaderIs431) {
  std::string request = "GET /small.txt HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 2000; ++i)
    request += fmt::format("X-Junk-{}: {}\r\n", i, std::string(40, 'a'));
  request += "\r\n";
  std::string reply = Exchange(request);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 431 ")) << reply.substr(0, 100);
  // One huge line too (a long URL is part of the head as well).
  reply = Exchange("GET /" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 431 ")) << reply.substr(0, 100);
  // Just under the limit is fine.
  std::string ok = "GET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX: ";
  ok += std::string(8000 - ok.size(), 'b') + "\r\n\r\n";
  EXPECT_TRUE(Exchange(ok).starts_with("HTTP/1.1 200 "));
}

TEST_F(HostileTest, BadRangesAreIgnored) {
  for (std::string_view range :
       {"bytes=5-1", "bytes=x-y", "bytes=0-1,,a", "furlongs=0-1", "bytes 0-1", "bytes=--1"}) {
    std::string reply = Exchange(fmt::format(
        "GET /small.txt HTTP/1.1\r\nHost: x\r\nRange: {}\r\nConnection: close\r\n\r\n", range));
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 200 ")) << range;
    EXPECT_TRUE(reply.ends_with("\r\n\r\nhello\n")) << range;
  }
  // Two Range fields: not a valid singleton, ignored.
  EXPECT_TRUE(Exchange("GET /small.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n"
                       "Range: bytes=1-1\r\nConnection: close\r\n\r\n")
                  .starts_with("HTTP/1.1 200 "));
}

TEST_F(HostileTest, PipelinedRequestsAnsweredInOrder) {
  std::string reply = Exchange(
      "GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n"
      "HEAD /menu.ipxe HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /small.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=1-2\r\nConnection: close\r\n\r\n");
  size_t a = reply.find("HTTP/1.1 200 "), b = reply.find("HTTP/1.1 200 ", a + 1);
  size_t c = reply.find("HTTP/1.1 404 "), d = reply.find("HTTP/1.1 206 ");
  EXPECT_TRUE(a == 0 && a < b && b < c && c < d && d != std::string::npos) << reply;
  EXPECT_TRUE(reply.ends_with("\r\n\r\nel")) << reply;
}

TEST_F(HostileTest, SlowlorisClientsAreDroppedWithoutHarm) {
  std::atomic<bool> busy = true;
  std::atomic<int> dropped = 0, answered = 0;
  std::vector<std::thread> slow;
  for (int i = 0; i < 5; ++i) {
    slow.emplace_back([&] {
      RawClient c(server_.port());
      const std::string request = "GET /boot/x86_64/loader/initrd HTTP/1.1\r\nHost: x\r\n\r\n";
      // One byte a second; the whole head would take ~50 s, the server
      // allows 1 s. Sends fail soon after the server closes.
      for (size_t k = 0; k < request.size(); ++k) {
        if (!c.Send(request.substr(k, 1))) {
          dropped++;
          return;
        }
        std::this_thread::sleep_for(1s);
      }
      answered++;
    });
  }
  int good = 0, bad = 0;
  NormalClient(busy, good, bad);  // runs while the slow clients trickle
  for (auto& t : slow)
    t.join();
  busy = false;
  EXPECT_EQ(dropped, 5);
  EXPECT_EQ(answered, 0);
  EXPECT_GE(good, 3);
  EXPECT_EQ(bad, 0);
}

TEST_F(HostileTest, ClientsThatStopReadingOrVanishAreDropped) {
  std::atomic<bool> busy = true;
  int good = 0, bad = 0;
  std::thread normal([&] { NormalClient(busy, good, bad); });
  // Asks for a 5 GiB file and never reads: dropped after send_timeout.
  RawClient stuck(server_.port());
  stuck.Send("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
  {
    // Reads a little, then vanishes mid-transfer.
    RawClient gone(server_.port());
    gone.Send("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    char buf[100];
    EXPECT_GT(recv(gone.fd(), buf, sizeof buf, 0), 0);
  }
  // Wait (bounded) until the server has given up on both.
  int incomplete = 0;
  for (int i = 0; i < 300 && incomplete < 2; ++i) {
    std::this_thread::sleep_for(100ms);
    incomplete = 0;
    for (const RequestRecord& r : server_.Records()) {
      incomplete += r.path == "/big.bin" && !r.complete;
    }
  }
  EXPECT_EQ(incomplete, 2);
  EXPECT_TRUE(stuck.WaitClosed());
  busy = false;
  normal.join();
  EXPECT_GE(good, 3);
  EXPECT_EQ(bad, 0);
}

}  // namespace
}  // namespace isoboot::http::testing
