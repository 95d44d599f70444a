// The server against curl, a real HTTP client: whole files, HEAD, ranges,
// If-Range, keep-alive, status codes, counters and the request hook.
#include "http/server.h"

#include <fmt/format.h>

#include "tests/http/fixture.h"

namespace isoboot::http::testing {
namespace {

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    served_ = new ServedTree(*dir_);
  }
  static void TearDownTestSuite() {
    delete served_;
    delete dir_;
  }
  ServerTest() : server_(served_->tree, Options()) {}
  static ServerOptions Options() {
    ServerOptions o;
    o.request_timeout = std::chrono::seconds(20);
    o.threads = 2;                       // as isoboot serve runs it: two event loops
    o.max_connections_per_client = 512;  // ManyConcurrentClients: 300 from 127.0.0.1
    return o;
  }

  // curl -s -D head -o body [extra] URL; returns the parsed head.
  Head Curl(const std::string& name, const std::string& extra, std::string* body = nullptr) {
    std::string h = *dir_ / "head", b = *dir_ / "body";
    std::remove(h.c_str());
    std::remove(b.c_str());
    int rc = Sh(fmt::format("curl -s -S --max-time 60 -D {} -o {} {} '{}' 2>&1", h, b, extra,
                            server_.Url(name)));
    EXPECT_EQ(rc, 0) << "curl " << extra << " " << name;
    if (body) *body = ReadFile(b);
    return ParseHead(ReadFile(h));
  }

  static const std::string& Expected(const std::string& name) { return served_->expected.at(name); }

  static TempDir* dir_;
  static ServedTree* served_;
  RunningServer server_;
};
TempDir* ServerTest::dir_ = nullptr;
ServedTree* ServerTest::served_ = nullptr;

TEST_F(ServerTest, WholeFilesByteForByte) {
  for (const auto& [name, want] : served_->expected) {
    std::string body;
    Head h = Curl(name, "", &body);
    EXPECT_EQ(h.status, 200u) << name;
    EXPECT_EQ(h.Get("content-length"), std::to_string(want.size())) << name;
    EXPECT_TRUE(body == want) << name << ": " << body.size() << " bytes, want " << want.size();
    EXPECT_EQ(h.Get("accept-ranges"), "bytes");
    EXPECT_EQ(h.Get("etag").front(), '"');
  }
  EXPECT_EQ(Curl("live.iso", "").Get("content-type"), "application/x-iso9660-image");
  EXPECT_EQ(Curl("boot/x86_64/loader/linux", "").Get("content-type"), "application/octet-stream");
  EXPECT_EQ(Curl("menu.ipxe", "").Get("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(Curl("menu.ipxe", "").Get("last-modified"), "Tue, 14 Nov 2023 22:13:20 GMT");
  EXPECT_NE(Curl("boot/x86_64/loader/linux", "").Get("last-modified"), "");
}

TEST_F(ServerTest, LookupToleratesWhatRomsSend) {
  std::string body;
  EXPECT_EQ(Curl("/boot//x86_64/loader/linux", "--path-as-is", &body).status, 200u);
  EXPECT_TRUE(body == Expected("boot/x86_64/loader/linux"));
  EXPECT_EQ(Curl("live%2Eiso", "", &body).status, 200u);
  EXPECT_EQ(Curl("small.txt?x=1", "", &body).status, 200u);
  EXPECT_EQ(body, "hello\n");
}

TEST_F(ServerTest, Head) {
  Head h = Curl("live.iso", "-I");
  EXPECT_EQ(h.status, 200u);
  EXPECT_EQ(h.Get("content-length"), std::to_string(Expected("live.iso").size()));
  EXPECT_EQ(h.Get("content-type"), "application/x-iso9660-image");
  EXPECT_NE(h.Get("last-modified"), "");
  // No body follows the head, even with a Range field (ignored for HEAD).
  RawClient c(server_.port());
  c.Send("HEAD /live.iso HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\nConnection: close\r\n\r\n");
  std::string reply = c.ReadToEnd();
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_TRUE(reply.ends_with("\r\n\r\n")) << reply;
}

TEST_F(ServerTest, SingleRanges) {
  const std::string& initrd = Expected("boot/x86_64/loader/initrd");
  const uint64_t size = initrd.size();
  struct Case {
    std::string range;
    uint64_t first, last;
  } cases[] = {{"0-0", 0, 0},
               {"0-99", 0, 99},
               {"1000-", 1000, size - 1},
               {"-4096", size - 4096, size - 1},
               {fmt::format("{}-{}", size - 1, size + 100), size - 1, size - 1},
               {"-99999999", 0, size - 1},
               {"2047-2048", 2047, 2048}};
  for (const Case& c : cases) {
    std::string body;
    Head h = Curl("boot/x86_64/loader/initrd", "-r " + c.range, &body);
    EXPECT_EQ(h.status, 206u) << c.range;
    EXPECT_EQ(h.Get("content-range"), fmt::format("bytes {}-{}/{}", c.first, c.last, size))
        << c.range;
    EXPECT_TRUE(body == initrd.substr(c.first, c.last - c.first + 1)) << c.range;
  }
}

TEST_F(ServerTest, FilesOver4GiB) {
  const uint64_t size = served_->big_size;
  EXPECT_EQ(Curl("big.bin", "-I").Get("content-length"), std::to_string(size));
  const uint64_t four = 4ull << 30;
  for (auto [first, last] : {std::pair{four - 1000, four + 1000},
                             {four - 300000, four + 200000},
                             {size - 5000, size - 1}}) {
    std::string body;
    Head h = Curl("big.bin", fmt::format("-r {}-{}", first, last), &body);
    EXPECT_EQ(h.status, 206u);
    EXPECT_EQ(h.Get("content-range"), fmt::format("bytes {}-{}/{}", first, last, size));
    EXPECT_TRUE(body == served_->BigBytes(first, last - first + 1)) << first;
  }
  std::string body;
  Head h = Curl("big.bin", fmt::format("-r 0-9,{}-{}", four + 5, four + 9), &body);
  auto type = h.Get("content-type");
  ASSERT_EQ(h.status, 206u);
  auto parts = ParseMultipart(body, type.substr(type.find('=') + 1));
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_TRUE((*parts)[1].data == served_->BigBytes(four + 5, 5));
  EXPECT_EQ((*parts)[1].total, size);
}

TEST_F(ServerTest, UnsatisfiableRangeIs416) {
  const uint64_t size = Expected("live.iso").size();
  Head h = Curl("live.iso", fmt::format("-r {}-", size));
  EXPECT_EQ(h.status, 416u);
  EXPECT_EQ(h.Get("content-range"), fmt::format("bytes */{}", size));
  EXPECT_EQ(Curl("empty", "-r 0-").status, 416u);
  // Invalid syntax is ignored: the whole file.
  std::string body;
  EXPECT_EQ(Curl("small.txt", "-H 'Range: bytes=5-1'", &body).status, 200u);
  EXPECT_EQ(body, "hello\n");
}

TEST_F(ServerTest, NotFoundAndMethodNotAllowed) {
  EXPECT_EQ(Curl("nothing", "").status, 404u);
  EXPECT_EQ(Curl("../../etc/passwd", "--path-as-is").status, 404u);
  EXPECT_EQ(Curl("", "").status, 404u);
  Head h = Curl("small.txt", "-X POST -d x=1");
  EXPECT_EQ(h.status, 405u);  // answered, then closed: the body is never read
  EXPECT_EQ(h.Get("connection"), "close");
  h = Curl("small.txt", "-X DELETE");
  EXPECT_EQ(h.status, 405u);
  EXPECT_EQ(h.Get("allow"), "GET, HEAD");
}

TEST_F(ServerTest, IfRange) {
  const std::string& linux_bytes = Expected("boot/x86_64/loader/linux");
  Head full = Curl("boot/x86_64/loader/linux", "-I");
  const std::string etag = full.Get("etag");
  const std::string date = full.Get("last-modified");
  std::string body;
  Head h = Curl("boot/x86_64/loader/linux", fmt::format("-r 10-19 -H 'If-Range: {}'", etag), &body);
  EXPECT_EQ(h.status, 206u);
  EXPECT_TRUE(body == linux_bytes.substr(10, 10));
  h = Curl("boot/x86_64/loader/linux", "-r 10-19 -H 'If-Range: \"stale-etag\"'", &body);
  EXPECT_EQ(h.status, 200u);
  EXPECT_TRUE(body == linux_bytes);
  h = Curl("boot/x86_64/loader/linux", fmt::format("-r 10-19 -H 'If-Range: W/{}'", etag), &body);
  EXPECT_EQ(h.status, 200u);
  h = Curl("boot/x86_64/loader/linux", fmt::format("-r 10-19 -H 'If-Range: {}'", date), &body);
  EXPECT_EQ(h.status, 206u);
  h = Curl("boot/x86_64/loader/linux", "-r 10-19 -H 'If-Range: Sat, 01 Jan 2000 00:00:00 GMT'",
           &body);
  EXPECT_EQ(h.status, 200u);
}

TEST_F(ServerTest, KeepAliveReusesOneConnection) {
  std::string out;
  std::string urls;
  for (const char* name :
       {"small.txt", "menu.ipxe", "boot/x86_64/loader/linux", "nothing", "frag.bin", "small.txt"}) {
    urls += fmt::format(" '{}' -o /dev/null", server_.Url(name));
  }
  ASSERT_EQ(Sh("curl -s --max-time 60 -w '%{num_connects} %{http_code}\\n'" + urls, &out), 0);
  EXPECT_EQ(out, "1 200\n0 200\n0 200\n0 404\n0 200\n0 200\n");
  // HTTP/1.0 closes unless asked to keep alive.
  out.clear();
  ASSERT_EQ(Sh(fmt::format("curl -s -0 --max-time 60 -w '%{{num_connects}}\\n' '{}' -o /dev/null "
                           "'{}' -o /dev/null",
                           server_.Url("small.txt"), server_.Url("small.txt")),
               &out),
            0);
  EXPECT_EQ(out, "1\n1\n");
}

TEST_F(ServerTest, CountersAndHook) {
  const std::string& initrd = Expected("boot/x86_64/loader/initrd");
  Curl("boot/x86_64/loader/initrd", "");
  Curl("boot/x86_64/loader/initrd", "-r 0-999");
  Curl("nothing", "");
  // curl can exit before the server thread has finished its bookkeeping for
  // the last response (the 404): wait for it, bounded.
  server_.RecordsAtLeast(3);
  ClientCounters c = server_.server().CountersFor("127.0.0.1");
  EXPECT_EQ(c.requests, 3u);
  EXPECT_GE(c.body_bytes, initrd.size() + 1000);
  EXPECT_EQ(server_.server().Counters().count("127.0.0.1"), 1u);
  auto records = server_.Records();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].client, "127.0.0.1");
  EXPECT_EQ(records[0].method, "GET");
  EXPECT_EQ(records[0].path, "/boot/x86_64/loader/initrd");
  EXPECT_EQ(records[0].status, 200u);
  EXPECT_EQ(records[0].bytes, initrd.size());
  EXPECT_TRUE(records[0].complete);
  EXPECT_EQ(records[1].status, 206u);
  EXPECT_EQ(records[1].bytes, 1000u);
  EXPECT_EQ(records[2].status, 404u);
}

TEST_F(ServerTest, ManyConcurrentClients) {
  // 300 parallel curl transfers (separate connections) of mixed files and ranges.
  std::string config;
  std::vector<std::pair<std::string, std::string>> want;  // output file, expected bytes
  const std::string names[] = {"boot/x86_64/loader/linux", "frag.bin", "menu.ipxe", "live.iso"};
  for (int i = 0; i < 300; ++i) {
    const std::string& name = names[i % 4];
    std::string out = *dir_ / fmt::format("par-{}", i);
    // "next" separates transfers; a trailing one would be an empty transfer.
    if (i > 0) config += "next\n";
    config += fmt::format("url = \"{}\"\noutput = \"{}\"\n", server_.Url(name), out);
    std::string expect = Expected(name);
    if (i % 3 == 1) {
      uint64_t first = (i * 7919) % expect.size();
      config += fmt::format("range = \"{}-\"\n", first);
      expect = expect.substr(first);
    }
    want.emplace_back(out, expect);
  }
  WriteFile(*dir_ / "par.conf", config);
  std::string out;
  EXPECT_EQ(Sh(fmt::format("curl -s -S --max-time 120 --parallel --parallel-max 300 "
                           "--parallel-immediate -K {} -w '%{{http_code}}\\n' 2>&1",
                           (*dir_ / "par.conf").string()),
               &out),
            0)
      << out;
  for (const auto& [file, expect] : want) {
    EXPECT_TRUE(ReadFile(file) == expect) << file;
  }
  EXPECT_GE(server_.RecordsAtLeast(300).size(), 300u);
}

}  // namespace
}  // namespace isoboot::http::testing
