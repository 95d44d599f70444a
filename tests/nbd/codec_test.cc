#include "nbd/codec.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace isoboot::nbd {
namespace {

std::vector<uint8_t> Bytes(std::initializer_list<int> v) {
  return std::vector<uint8_t>(v.begin(), v.end());
}

TEST(NbdCodec, GreetingIsNbdMagicIHaveOptAndFlags) {
  std::vector<uint8_t> out;
  AppendGreeting(kFlagFixedNewstyle | kFlagNoZeroes, out);
  ASSERT_EQ(out.size(), kGreetingSize);
  EXPECT_EQ(std::string(out.begin(), out.begin() + 16), "NBDMAGICIHAVEOPT");
  EXPECT_EQ(out[16], 0);
  EXPECT_EQ(out[17], 3);
  auto g = ParseGreeting(out);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->flags, 3);
}

TEST(NbdCodec, ClientFlags) {
  EXPECT_EQ(*ParseClientFlags(Bytes({0, 0, 0, 1})), 1u);
  EXPECT_EQ(*ParseClientFlags(Bytes({0, 0, 0, 3})), 3u);
  EXPECT_TRUE(ParseClientFlags(Bytes({0, 0, 0, 0})).error().Is(ErrorKind::kUnsupported));
  EXPECT_TRUE(ParseClientFlags(Bytes({0, 0, 0, 2})).error().Is(ErrorKind::kUnsupported));
  EXPECT_TRUE(ParseClientFlags(Bytes({0, 0, 0, 5})).error().Is(ErrorKind::kUnsupported));
  EXPECT_FALSE(ParseClientFlags(Bytes({0, 0, 1})));
}

TEST(NbdCodec, OptionRoundTrip) {
  std::vector<uint8_t> out;
  InfoRequest req{"disk", {kInfoName, kInfoBlockSize}};
  std::vector<uint8_t> data;
  AppendInfoRequest(req, data);
  AppendOption(kOptGo, data, out);
  ASSERT_EQ(out.size(), kOptionHeaderSize + 4 + 4 + 2 + 4);
  auto h = ParseOptionHeader(std::span(out).first(kOptionHeaderSize));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->option, kOptGo);
  EXPECT_EQ(h->length, data.size());
  auto back = ParseInfoRequest(std::span(out).subspan(kOptionHeaderSize));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->name, "disk");
  EXPECT_EQ(back->requests, (std::vector<uint16_t>{kInfoName, kInfoBlockSize}));
}

TEST(NbdCodec, OptionReplies) {
  std::vector<uint8_t> out;
  AppendInfoExport(kOptGo, 1 << 20, 0x103, out);
  auto r = ParseOptionReply(out);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->option, kOptGo);
  EXPECT_EQ(r->type, kRepInfo);
  EXPECT_EQ(r->data.size(), 12u);
  EXPECT_EQ(std::vector<uint8_t>(r->data.begin(), r->data.end()),
            Bytes({0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 3}));
  out.clear();
  AppendInfoBlockSize(kOptInfo, 1, 4096, 32 << 20, out);
  r = ParseOptionReply(out);
  ASSERT_TRUE(r);
  EXPECT_EQ(std::vector<uint8_t>(r->data.begin(), r->data.end()),
            Bytes({0, 3, 0, 0, 0, 1, 0, 0, 0x10, 0, 0x02, 0, 0, 0}));
  out.clear();
  AppendServerEntry("a", out);
  r = ParseOptionReply(out);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->option, kOptList);
  EXPECT_EQ(r->type, kRepServer);
  EXPECT_EQ(std::vector<uint8_t>(r->data.begin(), r->data.end()), Bytes({0, 0, 0, 1, 'a'}));
  EXPECT_EQ(kRepErrUnsup, 0x80000001u);
  EXPECT_EQ(kRepErrTooBig, 0x80000009u);
}

TEST(NbdCodec, ExportNameReplyPadsUnlessNoZeroes) {
  std::vector<uint8_t> out;
  AppendExportNameReply(512, kFlagHasFlags, false, out);
  EXPECT_EQ(out.size(), 8u + 2 + kExportNamePadding);
  out.clear();
  AppendExportNameReply(512, kFlagHasFlags, true, out);
  EXPECT_EQ(out, Bytes({0, 0, 0, 0, 0, 0, 2, 0, 0, 1}));
}

TEST(NbdCodec, RequestRoundTrip) {
  Request q{kCmdFlagFua, kCmdRead, 0x1122334455667788, 1ull << 40, 0xffffffff};
  std::vector<uint8_t> out;
  AppendRequest(q, out);
  ASSERT_EQ(out.size(), kRequestSize);
  EXPECT_EQ(out[0], 0x25);
  auto back = ParseRequest(out);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->flags, q.flags);
  EXPECT_EQ(back->type, q.type);
  EXPECT_EQ(back->cookie, q.cookie);
  EXPECT_EQ(back->offset, q.offset);
  EXPECT_EQ(back->length, q.length);
}

TEST(NbdCodec, Replies) {
  std::vector<uint8_t> out;
  AppendSimpleReply(kEperm, 7, out);
  EXPECT_EQ(out, Bytes({0x67, 0x44, 0x66, 0x98, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7}));
  auto s = ParseSimpleReply(out);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->error, kEperm);
  out.clear();
  AppendOffsetDataHeader(9, kReplyFlagDone, 4096, 512, out);
  ASSERT_EQ(out.size(), kChunkHeaderSize + 8);
  auto c = ParseChunkHeader(out);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->type, kReplyTypeOffsetData);
  EXPECT_EQ(c->flags, kReplyFlagDone);
  EXPECT_EQ(c->cookie, 9u);
  EXPECT_EQ(c->length, 520u);
  out.clear();
  AppendErrorOffsetChunk(3, kEinval, 100, "no", out);
  c = ParseChunkHeader(out);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->type, kReplyTypeErrorOffset);
  auto e = ParseErrorPayload(c->type, std::span(out).subspan(kChunkHeaderSize));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->error, kEinval);
  EXPECT_EQ(e->message, "no");
  EXPECT_EQ(e->offset, 100u);
  out.clear();
  AppendErrorChunk(3, kEio, "bad", out);
  c = ParseChunkHeader(out);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->length, 9u);
  e = ParseErrorPayload(c->type, std::span(out).subspan(kChunkHeaderSize));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->message, "bad");
}

struct Malformed {
  const char* what;
  std::vector<uint8_t> bytes;
};

TEST(NbdCodec, MalformedInfoRequests) {
  std::vector<Malformed> cases = {
      {"empty", {}},
      {"short length", {0, 0, 0}},
      {"name past the data", {0, 0, 0, 5, 'a', 'b', 0, 0}},
      {"huge name length", {0xff, 0xff, 0xff, 0xff, 0, 0}},
      {"no request count", {0, 0, 0, 1, 'a'}},
      {"half a count", {0, 0, 0, 1, 'a', 0}},
      {"count past the data", {0, 0, 0, 0, 0, 2, 0, 1}},
      {"trailing byte", {0, 0, 0, 0, 0, 1, 0, 1, 9}},
      {"NUL in name", {0, 0, 0, 2, 'a', 0, 0, 0}},
  };
  for (const auto& c : cases)
    EXPECT_FALSE(ParseInfoRequest(c.bytes)) << c.what;
  std::vector<uint8_t> big(4 + 5000 + 2, 'x');
  big[0] = 0, big[1] = 0, big[2] = 0x13, big[3] = 0x88;  // 5000
  big[5004] = 0, big[5005] = 0;
  auto r = ParseInfoRequest(big);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(ErrorKind::kExhausted));
}

TEST(NbdCodec, MalformedFrames) {
  std::vector<uint8_t> req;
  AppendRequest({0, kCmdRead, 1, 0, 512}, req);
  auto bad_magic = req;
  bad_magic[0] ^= 1;
  EXPECT_FALSE(ParseRequest(bad_magic));
  EXPECT_FALSE(ParseRequest(std::span(req).first(27)));
  std::vector<uint8_t> opt;
  AppendOption(kOptList, {}, opt);
  EXPECT_FALSE(ParseOptionHeader(std::span(opt).first(15)));
  opt[0] = 'X';
  EXPECT_FALSE(ParseOptionHeader(opt));
  EXPECT_FALSE(ParseExportName(Bytes({'a', 0})));
  EXPECT_FALSE(ParseExportName(std::vector<uint8_t>(kMaxString + 1, 'a')));
  EXPECT_TRUE(ParseExportName(std::vector<uint8_t>(kMaxString, 'a')));
  std::vector<uint8_t> reply;
  AppendOptionReply(kOptList, kRepAck, Bytes({1, 2, 3}), reply);
  EXPECT_FALSE(ParseOptionReply(std::span(reply).first(reply.size() - 1)));
  EXPECT_FALSE(ParseErrorPayload(kReplyTypeOffsetData, Bytes({0, 0, 0, 1, 0, 0})));
  EXPECT_FALSE(ParseErrorPayload(kReplyTypeError, Bytes({0, 0, 0, 1, 0, 5, 'a'})));
  EXPECT_FALSE(ParseErrorPayload(kReplyTypeError, Bytes({0, 0, 0, 0, 0, 0})));
  EXPECT_FALSE(ParseErrorPayload(kReplyTypeErrorOffset, Bytes({0, 0, 0, 1, 0, 0, 1})));
  std::vector<uint8_t> greeting;
  AppendGreeting(1, greeting);
  greeting[8] = 0;  // oldstyle: no IHAVEOPT
  EXPECT_TRUE(ParseGreeting(greeting).error().Is(ErrorKind::kUnsupported));
}

TEST(NbdCodec, MetaContextRequestRoundTrip) {
  MetaContextRequest req{"disk", {"base:allocation", "qemu:dirty-bitmap:b"}};
  std::vector<uint8_t> out;
  AppendMetaContextRequest(req, out);
  EXPECT_EQ(out, Bytes({0,   0,   0,   4,   'd', 'i', 's', 'k', 0,   0,   0,   2,   0,   0,
                        0,   15,  'b', 'a', 's', 'e', ':', 'a', 'l', 'l', 'o', 'c', 'a', 't',
                        'i', 'o', 'n', 0,   0,   0,   19,  'q', 'e', 'm', 'u', ':', 'd', 'i',
                        'r', 't', 'y', '-', 'b', 'i', 't', 'm', 'a', 'p', ':', 'b'}));
  auto r = ParseMetaContextRequest(out, 16);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->name, "disk");
  EXPECT_EQ(r->queries, req.queries);
  // No queries, empty name.
  r = ParseMetaContextRequest(Bytes({0, 0, 0, 0, 0, 0, 0, 0}), 16);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->name.empty());
  EXPECT_TRUE(r->queries.empty());
}

TEST(NbdCodec, MalformedMetaContextRequests) {
  std::vector<Malformed> cases = {
      {"empty", {}},
      {"short name length", {0, 0, 0}},
      {"name past the data", {0, 0, 0, 5, 'a', 'b', 0, 0, 0, 0}},
      {"huge name length", {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}},
      {"no query count", {0, 0, 0, 1, 'a'}},
      {"half a count", {0, 0, 0, 1, 'a', 0, 0}},
      {"count past the data", {0, 0, 0, 0, 0, 0, 0, 1}},
      {"half a query length", {0, 0, 0, 0, 0, 0, 0, 1, 0, 0}},
      {"query past the data", {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 'b', 'a', 's', 'e', ':'}},
      {"huge query length", {0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 'b', ':'}},
      {"no namespace", {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4, 'b', 'a', 's', 'e'}},
      {"empty namespace", {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, ':', 'a'}},
      {"empty query", {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}},
      {"NUL in query", {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 'b', ':', 0}},
      {"NUL in name", {0, 0, 0, 1, 0, 0, 0, 0, 0}},
      {"trailing byte", {0, 0, 0, 0, 0, 0, 0, 0, 7}},
  };
  for (const auto& c : cases) {
    auto r = ParseMetaContextRequest(c.bytes, 16);
    ASSERT_FALSE(r) << c.what;
    EXPECT_TRUE(r.error().Is(ErrorKind::kInvalidInput)) << c.what;
  }
  // Limits: more queries than allowed (refused from the count, before the
  // queries are read), a query over 4096 bytes.
  MetaContextRequest many{"", std::vector<std::string>(17, "base:allocation")};
  std::vector<uint8_t> out;
  AppendMetaContextRequest(many, out);
  auto r = ParseMetaContextRequest(out, 16);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(ErrorKind::kExhausted));
  EXPECT_TRUE(ParseMetaContextRequest(Bytes({0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff}), 16)
                  .error()
                  .Is(ErrorKind::kExhausted));
  out.clear();
  AppendMetaContextRequest({"", {"x-a:" + std::string(kMaxString, 'a')}}, out);
  r = ParseMetaContextRequest(out, 16);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(ErrorKind::kExhausted));
  out.clear();
  AppendMetaContextRequest({"", {"x-a:" + std::string(kMaxString - 4, 'a')}}, out);
  EXPECT_TRUE(ParseMetaContextRequest(out, 16));
}

TEST(NbdCodec, MetaContextReply) {
  std::vector<uint8_t> out;
  AppendMetaContext(kOptSetMetaContext, 1, "base:allocation", out);
  auto r = ParseOptionReply(out);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->option, kOptSetMetaContext);
  EXPECT_EQ(r->type, kRepMetaContext);
  EXPECT_EQ(std::vector<uint8_t>(r->data.begin(), r->data.end()),
            Bytes({0, 0, 0, 1, 'b', 'a', 's', 'e', ':', 'a', 'l', 'l', 'o', 'c', 'a', 't', 'i', 'o',
                   'n'}));
}

TEST(NbdCodec, BlockStatusChunk) {
  std::vector<uint8_t> out;
  std::vector<BlockDescriptor> d = {{0x10000, 0}, {0x200, kStateHole | kStateZero}};
  AppendBlockStatusChunk(0x0102030405060708, 1, d, out);
  EXPECT_EQ(out, Bytes({0x66, 0x8e, 0x33, 0xef, 0, 1, 0, 5,     // magic, DONE, BLOCK_STATUS
                        1,    2,    3,    4,    5, 6, 7, 8,     // cookie
                        0,    0,    0,    20,                   // 4 + 2 * 8
                        0,    0,    0,    1,                    // context id
                        0,    1,    0,    0,    0, 0, 0, 0,     // 64 KiB data
                        0,    0,    2,    0,    0, 0, 0, 3}));  // 512 bytes hole, zero
  auto c = ParseChunkHeader(out);
  ASSERT_TRUE(c);
  auto p = ParseBlockStatusPayload(std::span(out).subspan(kChunkHeaderSize));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->context_id, 1u);
  EXPECT_EQ(p->descriptors, d);
  EXPECT_FALSE(ParseBlockStatusPayload(Bytes({0, 0, 0, 1})));  // no descriptor
  EXPECT_FALSE(ParseBlockStatusPayload(Bytes({0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0})));
  EXPECT_FALSE(ParseBlockStatusPayload(Bytes({0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})));
}

}  // namespace
}  // namespace isoboot::nbd
