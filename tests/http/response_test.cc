#include "http/response.h"

#include <gtest/gtest.h>

namespace isoboot::http {
namespace {

std::string Field(const ResponsePlan& plan, std::string_view name) {
  for (const auto& [k, v] : plan.fields) {
    if (k == name) return v;
  }
  return "<absent>";
}

// The body as bytes, reading source pieces from `source`.
std::string Body(const ResponsePlan& plan) {
  std::string out;
  for (const BodyPiece& p : plan.body) {
    if (!p.from_source) {
      out += p.text;
      continue;
    }
    std::vector<uint8_t> buf(p.length);
    auto n = plan.source->Read(p.offset, buf);
    EXPECT_TRUE(n && *n == p.length);
    out.append(buf.begin(), buf.end());
  }
  return out;
}

class ResponseTest : public ::testing::Test {
 protected:
  ResponseTest() {
    tree_.Add("menu.ipxe", vfs::TextSource("#!ipxe\nboot\n", 784111777));
    tree_.Add("notes", vfs::TextSource("0123456789abcdefghij"));
    tree_.Add("empty", vfs::TextSource(""));
  }
  ResponsePlan Get(std::string_view target, std::optional<std::string_view> range = std::nullopt,
                   std::optional<std::string_view> if_range = std::nullopt) {
    RequestHead req;
    req.method = "GET";
    req.target = target;
    req.range = range;
    req.if_range = if_range;
    return PlanResponse(req, &tree_, "BOUNDARY");
  }
  vfs::Tree tree_;
};

TEST_F(ResponseTest, WholeFile) {
  ResponsePlan p = Get("/menu.ipxe");
  EXPECT_EQ(p.status, 200u);
  EXPECT_EQ(p.content_length, 12u);
  EXPECT_EQ(Body(p), "#!ipxe\nboot\n");
  EXPECT_EQ(Field(p, "Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(Field(p, "Last-Modified"), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(Field(p, "Accept-Ranges"), "bytes");
  EXPECT_EQ(Field(p, "ETag").front(), '"');
  EXPECT_EQ(Field(Get("/notes"), "Last-Modified"), "<absent>");
  EXPECT_FALSE(p.close);
}

TEST_F(ResponseTest, HeadHasNoBodyAndIgnoresRange) {
  RequestHead req;
  req.method = "HEAD";
  req.target = "/notes";
  req.range = "bytes=0-1";
  ResponsePlan p = PlanResponse(req, &tree_, "B");
  EXPECT_EQ(p.status, 200u);
  EXPECT_EQ(p.content_length, 20u);
  EXPECT_TRUE(p.body.empty());
}

// Pages (serve's status page) are asked first, for their path only; the
// tree answers every other path; a page is never cached or ranged.
TEST_F(ResponseTest, PagesComeBeforeTheTree) {
  std::vector<std::string> asked;
  PageFor pages = [&](const std::string& path) -> std::optional<Page> {
    asked.push_back(path);
    if (path != "/status") return std::nullopt;
    Page page;
    page.content_type = "text/html";
    page.body = "<p>ok</p>";
    page.fields.emplace_back("X-Test", "1");
    return page;
  };
  RequestHead req;
  req.method = "GET";
  req.target = "/status?x=1";
  req.range = "bytes=0-1";
  ResponsePlan p = PlanResponse(req, &tree_, "B", pages);
  EXPECT_EQ(p.status, 200u);
  EXPECT_TRUE(p.page);
  EXPECT_EQ(Body(p), "<p>ok</p>");
  EXPECT_EQ(Field(p, "Content-Type"), "text/html");
  EXPECT_EQ(Field(p, "Cache-Control"), "no-store");
  EXPECT_EQ(Field(p, "X-Test"), "1");
  EXPECT_EQ(Field(p, "Content-Range"), "<absent>");
  req.method = "HEAD";
  ResponsePlan head = PlanResponse(req, &tree_, "B", pages);
  EXPECT_EQ(head.content_length, 9u);
  EXPECT_TRUE(head.body.empty());
  req.method = "GET";
  req.target = "/notes";
  req.range = std::nullopt;
  ResponsePlan file = PlanResponse(req, &tree_, "B", pages);
  EXPECT_FALSE(file.page);
  EXPECT_EQ(Body(file), "0123456789abcdefghij");
  req.method = "POST";  // pages answer GET and HEAD only
  EXPECT_EQ(PlanResponse(req, &tree_, "B", pages).status, 405u);
  EXPECT_EQ(asked, (std::vector<std::string>{"/status", "/status", "/notes"}));
}

TEST_F(ResponseTest, SingleRange) {
  ResponsePlan p = Get("/notes", "bytes=3-5");
  EXPECT_EQ(p.status, 206u);
  EXPECT_EQ(Field(p, "Content-Range"), "bytes 3-5/20");
  EXPECT_EQ(p.content_length, 3u);
  EXPECT_EQ(Body(p), "345");
}

TEST_F(ResponseTest, MultipartByteranges) {
  ResponsePlan p = Get("/notes", "bytes=10-11,-2");
  EXPECT_EQ(p.status, 206u);
  EXPECT_EQ(Field(p, "Content-Type"), "multipart/byteranges; boundary=BOUNDARY");
  const std::string want =
      "--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 10-11/20\r\n"
      "\r\nab\r\n--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n"
      "Content-Range: bytes 18-19/20\r\n\r\nij\r\n--BOUNDARY--\r\n";
  EXPECT_EQ(Body(p), want);
  EXPECT_EQ(p.content_length, want.size());
}

TEST_F(ResponseTest, UnsatisfiableAndIgnoredRanges) {
  ResponsePlan p = Get("/notes", "bytes=20-");
  EXPECT_EQ(p.status, 416u);
  EXPECT_EQ(Field(p, "Content-Range"), "bytes */20");
  EXPECT_EQ(p.content_length, 0u);
  EXPECT_EQ(Get("/empty", "bytes=0-").status, 416u);
  EXPECT_EQ(Get("/notes", "bytes=5-1").status, 200u);
  EXPECT_EQ(Get("/notes", "lines=1-2").status, 200u);
}

TEST_F(ResponseTest, IfRangeGatesTheRange) {
  std::string etag = EtagFor(*tree_.Lookup("notes"));
  EXPECT_EQ(Get("/notes", "bytes=0-1", etag).status, 206u);
  EXPECT_EQ(Get("/notes", "bytes=0-1", "\"stale\"").status, 200u);
  EXPECT_EQ(Get("/notes", "bytes=0-1", "W/" + etag).status, 200u);
  EXPECT_EQ(Get("/menu.ipxe", "bytes=0-1", "Sun, 06 Nov 1994 08:49:37 GMT").status, 206u);
  EXPECT_EQ(Get("/menu.ipxe", "bytes=0-1", "Sun, 06 Nov 1994 08:49:36 GMT").status, 200u);
  EXPECT_EQ(Get("/notes", std::nullopt, "\"stale\"").status, 200u);
}

TEST_F(ResponseTest, ErrorsAndMethods) {
  EXPECT_EQ(Get("/nothing").status, 404u);
  EXPECT_EQ(Get("/").status, 404u);
  EXPECT_EQ(Get("/../notes").status, 404u);
  EXPECT_EQ(Get("/notes%00").status, 404u);
  ResponsePlan bad = Get("/no%zzpe");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_TRUE(bad.close);
  EXPECT_EQ(Get("notes").status, 400u);

  RequestHead req;
  req.method = "POST";
  req.target = "/notes";
  ResponsePlan post = PlanResponse(req, &tree_, "B");
  EXPECT_EQ(post.status, 405u);
  EXPECT_EQ(Field(post, "Allow"), "GET, HEAD");
  req.method = "get";  // methods are case-sensitive
  EXPECT_EQ(PlanResponse(req, &tree_, "B").status, 405u);
  req.method = "GET";
  req.has_host = false;
  EXPECT_EQ(PlanResponse(req, &tree_, "B").status, 400u);
  req.version = 10;  // HTTP/1.0 needs no Host
  EXPECT_EQ(PlanResponse(req, &tree_, "B").status, 200u);
  EXPECT_EQ(PlanResponse(req, nullptr, "B").status, 404u);
}

TEST(DecodeTargetTest, Forms) {
  EXPECT_EQ(*DecodeTarget("/a/b?x=1#f"), "/a/b");
  EXPECT_EQ(*DecodeTarget("/live%2Eiso"), "/live.iso");
  EXPECT_EQ(*DecodeTarget("http://host:8080/boot/linux?q"), "/boot/linux");
  EXPECT_EQ(*DecodeTarget("http://host"), "/");
  EXPECT_FALSE(DecodeTarget("*"));
  EXPECT_FALSE(DecodeTarget(""));
  EXPECT_FALSE(DecodeTarget("/%4"));
  EXPECT_FALSE(DecodeTarget("/%"));
}

TEST(ContentTypeTest, ByNameAndKind) {
  auto text = vfs::TextSource("x");
  EXPECT_EQ(ContentTypeFor("live.ISO", *text), "application/x-iso9660-image");
  EXPECT_EQ(ContentTypeFor("pxelinux.cfg/default", *text), "text/plain; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("boot.ipxe", *text), "text/plain; charset=utf-8");
}

}  // namespace
}  // namespace isoboot::http
