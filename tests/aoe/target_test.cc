#include "aoe/target.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace isoboot::aoe {
namespace {

const Mac kSelf = {0x02, 0, 0, 0, 0, 0x01};
const Mac kClient = {0x02, 0, 0, 0, 0, 0x0c};
const Mac kOther = {0x02, 0, 0, 0, 0, 0x0d};

class Sink : public ResponseSink {
 public:
  std::vector<uint8_t>& Next() override {
    frames.emplace_back();
    return frames.back();
  }
  std::vector<std::vector<uint8_t>> frames;
};

std::vector<uint8_t> Image(size_t sectors) {
  std::vector<uint8_t> v(sectors * 512);
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<uint8_t>(i * 31 + i / 512);
  return v;
}

class TargetTest : public ::testing::Test {
 protected:
  TargetTest() : target_(kSelf, 2, 16) {
    ExportOptions o;
    o.shelf = 0;
    o.slot = 1;
    o.config_string = "live";
    device_ = new MemoryDevice(Image(100));
    target_.AddExport(o, std::unique_ptr<BlockDevice>(device_));
    ExportOptions w;
    w.shelf = 0;
    w.slot = 2;
    w.writable = true;
    target_.AddExport(w, std::make_unique<MemoryDevice>(Image(10)));
  }

  std::vector<uint8_t> Request(uint8_t command, uint16_t shelf = 0, uint8_t slot = 1,
                               const Mac& src = kClient) {
    Frame f;
    f.header.dst = kSelf;
    f.header.src = src;
    f.header.shelf = shelf;
    f.header.slot = slot;
    f.header.command = command;
    f.header.tag = 77;
    std::vector<uint8_t> out;
    AppendHeader(f.header, out);
    return out;
  }

  std::vector<uint8_t> Ata(uint8_t cmd, uint64_t lba, uint8_t count, uint8_t slot = 1,
                           std::span<const uint8_t> data = {}, const Mac& src = kClient) {
    auto out = Request(0, 0, slot, src);
    AtaMessage a;
    a.aflags = (cmd == kAtaReadSectorsExt || cmd == kAtaWriteSectorsExt) ? kAtaFlagExtended : 0;
    a.sector_count = count;
    a.cmd_status = cmd;
    a.lba = lba;
    AppendAta(a, out);
    out.insert(out.end(), data.begin(), data.end());
    return out;
  }

  Frame Answer(const std::vector<uint8_t>& request, Sink& sink) {
    HandleResult r = target_.Handle(request, sink);
    EXPECT_EQ(r.disposition, Disposition::kAnswered);
    EXPECT_EQ(sink.frames.size(), 1u);
    auto f = Parse(sink.frames.at(0));
    EXPECT_TRUE(f) << f.error().message;
    EXPECT_GE(sink.frames[0].size(), 60u);
    return *f;
  }

  MemoryDevice* device_;
  Target target_;
};

TEST_F(TargetTest, BroadcastQueryConfigAnswersEveryExport) {
  auto req = Request(1, kBroadcastShelf, kBroadcastSlot);
  req.insert(req.end(), 8, 0);
  Sink sink;
  EXPECT_EQ(target_.Handle(req, sink).disposition, Disposition::kAnswered);
  ASSERT_EQ(sink.frames.size(), 2u);
  auto f = Parse(sink.frames[0]);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->header.flags, kFlagResponse);
  EXPECT_EQ(f->header.dst, kClient);
  EXPECT_EQ(f->header.src, kSelf);
  EXPECT_EQ(f->header.tag, 77u);
  EXPECT_EQ(f->header.slot, 1);
  EXPECT_EQ(f->config.buffer_count, 16);
  EXPECT_EQ(f->config.sector_count, 2);
  EXPECT_EQ(f->config.aoe_version, 1);
  EXPECT_EQ(std::string(f->config.config.begin(), f->config.config.end()), "live");
}

// The exact bytes of a Query Config response, so that changes in how it is
// encoded cannot change what initiators receive.
TEST_F(TargetTest, QueryConfigResponseBytes) {
  auto req = Request(1);
  req.insert(req.end(), 8, 0);
  Sink sink;
  EXPECT_EQ(target_.Handle(req, sink).disposition, Disposition::kAnswered);
  ASSERT_EQ(sink.frames.size(), 1u);
  std::vector<uint8_t> want = {
      0x02, 0,  0, 0, 0, 0x0c, 0x02, 0, 0,   0,   0,   0x01, 0x88, 0xa2,  // Ethernet
      0x18, 0,  0, 0, 1, 1,    0,    0, 0,   77,                          // AoE: response, slot 1
      0,    16, 0, 1, 2, 0x10, 0,    4, 'l', 'i', 'v', 'e'};              // buffers, fw, sectors
  want.resize(60, 0);
  EXPECT_EQ(sink.frames[0], want);
}

TEST_F(TargetTest, QueryConfigTestSetAndForceSet) {
  auto qc = [&](ConfigCommand c, const std::string& s, uint8_t slot = 1) {
    auto req = Request(1, 0, slot);
    std::vector<uint8_t> body = {
        0, 0, 0, 0, 0, static_cast<uint8_t>(0x10 | uint8_t(c)), 0, static_cast<uint8_t>(s.size())};
    req.insert(req.end(), body.begin(), body.end());
    req.insert(req.end(), s.begin(), s.end());
    Sink sink;
    target_.Handle(req, sink);
    return sink.frames;
  };
  EXPECT_EQ(qc(ConfigCommand::kTest, "live").size(), 1u);
  EXPECT_EQ(qc(ConfigCommand::kTest, "liv").size(), 0u);
  EXPECT_EQ(qc(ConfigCommand::kTestPrefix, "liv").size(), 1u);
  auto r = qc(ConfigCommand::kSet, "other");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(Parse(r[0])->header.error, static_cast<uint8_t>(AoeError::kConfigStringPresent));
  EXPECT_EQ(qc(ConfigCommand::kForceSet, "other").size(), 1u);
  EXPECT_EQ(qc(ConfigCommand::kTest, "other").size(), 1u);
  r = qc(ConfigCommand::kSet, "fresh", 2);  // slot 2 has no config string yet
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(Parse(r[0])->header.error, 0);
}

TEST_F(TargetTest, IdentifyDescribesAnLba48Disk) {
  Sink sink;
  Frame f = Answer(Ata(kAtaIdentify, 0, 1), sink);
  EXPECT_EQ(f.ata.cmd_status, kAtaStatusDrdy);
  ASSERT_GE(f.ata.data.size(), 512u);
  auto word = [&](size_t w) { return f.ata.data[w * 2] | f.ata.data[w * 2 + 1] << 8; };
  EXPECT_EQ(word(83) & 0x0400, 0x0400);  // LBA48
  EXPECT_EQ(word(100), 100);             // sectors
  EXPECT_EQ(word(60), 100);
  std::string model;
  for (size_t i = 0; i < 40; ++i)
    model += static_cast<char>(f.ata.data[54 + (i ^ 1)]);
  EXPECT_EQ(model.substr(0, 18), "isoboot AoE target");
  uint8_t sum = 0;
  for (size_t i = 0; i < 512; ++i)
    sum = static_cast<uint8_t>(sum + f.ata.data[i]);
  EXPECT_EQ(sum, 0);
}

TEST_F(TargetTest, ReadSectorsLba28AndLba48) {
  for (uint8_t cmd : {kAtaReadSectors, kAtaReadSectorsExt}) {
    Sink sink;
    uint64_t lba = cmd == kAtaReadSectors ? (0xe0000000ull | 7) : 7;  // LBA28 top bits ignored
    Frame f = Answer(Ata(cmd, lba, 2), sink);
    EXPECT_EQ(f.ata.cmd_status, kAtaStatusDrdy);
    ASSERT_EQ(f.ata.data.size(), 1024u);
    EXPECT_TRUE(
        std::equal(f.ata.data.begin(), f.ata.data.end(), device_->bytes().begin() + 7 * 512));
  }
}

TEST_F(TargetTest, OutOfRangeAndTooLargeReads) {
  Sink sink;
  Frame f = Answer(Ata(kAtaReadSectorsExt, 99, 2), sink);
  EXPECT_EQ(f.ata.cmd_status, kAtaStatusDrdy | kAtaStatusErr);
  EXPECT_EQ(f.ata.err_feature, kAtaErrorIdnf);
  Sink sink2;
  f = Answer(Ata(kAtaReadSectorsExt, 0xffffffffffff, 1), sink2);
  EXPECT_EQ(f.ata.err_feature, kAtaErrorIdnf);
  Sink sink3;
  f = Answer(Ata(kAtaReadSectorsExt, 0, 3), sink3);  // more than 2 per frame
  EXPECT_EQ(f.header.flags, kFlagResponse | kFlagError);
  EXPECT_EQ(f.header.error, static_cast<uint8_t>(AoeError::kBadArgument));
}

TEST_F(TargetTest, WritesAbortOnReadOnlyExport) {
  std::vector<uint8_t> data(512, 0xaa);
  Sink sink;
  Frame f = Answer(Ata(kAtaWriteSectorsExt, 0, 1, 1, data), sink);
  EXPECT_EQ(f.ata.cmd_status, kAtaStatusDrdy | kAtaStatusErr);
  EXPECT_EQ(f.ata.err_feature, kAtaErrorAbrt);
  EXPECT_NE(device_->bytes()[0], 0xaa);
}

TEST_F(TargetTest, WritesLandOnWritableExport) {
  std::vector<uint8_t> data(1024, 0x5a);
  Sink sink;
  Frame f = Answer(Ata(kAtaWriteSectorsExt, 3, 2, 2, data), sink);
  EXPECT_EQ(f.ata.cmd_status, kAtaStatusDrdy);
  Sink sink2;
  f = Answer(Ata(kAtaReadSectorsExt, 3, 2, 2), sink2);
  ASSERT_EQ(f.ata.data.size(), 1024u);
  EXPECT_EQ(f.ata.data[0], 0x5a);
  EXPECT_EQ(f.ata.data[1023], 0x5a);
  Sink sink3;  // data shorter than the sector count says
  f = Answer(Ata(kAtaWriteSectorsExt, 3, 2, 2, std::span(data).first(100)), sink3);
  EXPECT_EQ(f.header.error, static_cast<uint8_t>(AoeError::kBadArgument));
}

TEST_F(TargetTest, PowerModeFlushAndUnknownAtaCommands) {
  Sink s1;
  Frame f = Answer(Ata(kAtaCheckPowerMode, 0, 0), s1);
  EXPECT_EQ(f.ata.cmd_status, kAtaStatusDrdy);
  EXPECT_EQ(f.ata.sector_count, 0xff);
  Sink s2;
  f = Answer(Ata(kAtaFlushCacheExt, 0, 0), s2);
  EXPECT_EQ(f.ata.cmd_status, kAtaStatusDrdy);
  Sink s3;
  f = Answer(Ata(0x99, 0, 0), s3);
  EXPECT_EQ(f.ata.cmd_status, kAtaStatusDrdy | kAtaStatusErr);
  EXPECT_EQ(f.ata.err_feature, kAtaErrorAbrt);
}

TEST_F(TargetTest, UnknownAoeCommandGetsAnError) {
  Sink sink;
  Frame f = Answer(Request(0x42), sink);
  EXPECT_EQ(f.header.error, static_cast<uint8_t>(AoeError::kUnrecognizedCommand));
}

TEST_F(TargetTest, IgnoresOtherTargetsResponsesAndMalformed) {
  Sink sink;
  EXPECT_EQ(target_.Handle(Ata(kAtaIdentify, 0, 1, 9), sink).disposition, Disposition::kIgnored);
  auto resp = Ata(kAtaIdentify, 0, 1);
  resp[14] |= kFlagResponse;
  EXPECT_EQ(target_.Handle(resp, sink).disposition, Disposition::kIgnored);
  auto bad = Ata(kAtaIdentify, 0, 1);
  bad[14] = 0x20;  // version 2
  EXPECT_EQ(target_.Handle(bad, sink).disposition, Disposition::kMalformed);
  bad.resize(30);
  EXPECT_EQ(target_.Handle(bad, sink).disposition, Disposition::kMalformed);
  EXPECT_TRUE(sink.frames.empty());
}

TEST_F(TargetTest, MacMaskListRestrictsAccess) {
  auto edit = Request(2);
  std::vector<uint8_t> body = {0, 1, 0, 1, 0, 1};
  body.insert(body.end(), kClient.begin(), kClient.end());
  edit.insert(edit.end(), body.begin(), body.end());
  Sink sink;
  Frame f = Answer(edit, sink);
  EXPECT_EQ(f.mask.count, 1);
  EXPECT_EQ(f.mask.Directive(0).mac, kClient);
  Sink other;
  EXPECT_EQ(target_.Handle(Ata(kAtaIdentify, 0, 1, 1, {}, kOther), other).disposition,
            Disposition::kIgnored);
  Sink mine;
  Answer(Ata(kAtaIdentify, 0, 1, 1, {}, kClient), mine);
}

TEST_F(TargetTest, ReservationBlocksOtherInitiators) {
  auto reserve = Request(3);
  reserve.push_back(1);
  reserve.push_back(1);
  reserve.insert(reserve.end(), kClient.begin(), kClient.end());
  Sink sink;
  Frame f = Answer(reserve, sink);
  EXPECT_EQ(f.reserve.count, 1);
  Sink other;
  f = Answer(Ata(kAtaReadSectorsExt, 0, 1, 1, {}, kOther), other);
  EXPECT_EQ(f.header.error, static_cast<uint8_t>(AoeError::kTargetReserved));
  auto steal = Request(3, 0, 1, kOther);
  steal.push_back(1);
  steal.push_back(0);
  Sink s2;
  f = Answer(steal, s2);
  EXPECT_EQ(f.header.error, static_cast<uint8_t>(AoeError::kTargetReserved));
  Sink mine;
  f = Answer(Ata(kAtaReadSectorsExt, 0, 1, 1, {}, kClient), mine);
  EXPECT_EQ(f.header.error, 0);
}

// A target as `isoboot serve` runs it: the network may read its control
// state but not change it.
class ReadOnlyControlTest : public ::testing::Test {
 protected:
  ReadOnlyControlTest() : target_(kSelf, 2, 16) {
    ExportOptions o;
    o.config_string = "isoboot";
    o.network_may_configure = false;
    target_.AddExport(o, std::make_unique<MemoryDevice>(Image(100)));
  }

  std::vector<uint8_t> Request(uint8_t command, std::vector<uint8_t> body,
                               const Mac& src = kOther) {
    Frame f;
    f.header.dst = kSelf;
    f.header.src = src;
    f.header.slot = 1;
    f.header.command = command;
    f.header.tag = 5;
    std::vector<uint8_t> out;
    AppendHeader(f.header, out);
    out.insert(out.end(), body.begin(), body.end());
    return out;
  }
  std::vector<uint8_t> Read(const Mac& src) {
    auto out = Request(0, {}, src);
    AtaMessage a;
    a.aflags = kAtaFlagExtended;
    a.sector_count = 1;
    a.cmd_status = kAtaReadSectorsExt;
    AppendAta(a, out);
    return out;
  }
  // Handles `req`; returns the single answer and whether it was a refusal.
  // The answer's spans point into sink_: valid until the next call.
  Frame One(const std::vector<uint8_t>& req, bool* refused = nullptr) {
    sink_.frames.clear();
    HandleResult r = target_.Handle(req, sink_);
    EXPECT_EQ(r.disposition, Disposition::kAnswered);
    if (refused) *refused = r.refused;
    EXPECT_EQ(sink_.frames.size(), 1u);
    auto f = Parse(sink_.frames.at(0));
    EXPECT_TRUE(f);
    return *f;
  }
  void ExpectClientStillReads() {
    Frame f = One(Read(kClient));
    EXPECT_EQ(f.header.flags & kFlagError, 0);
    EXPECT_EQ(f.ata.cmd_status, kAtaStatusDrdy);
  }

  Target target_;
  Sink sink_;
};

TEST_F(ReadOnlyControlTest, ReserveSetAndForceSetAreRefused) {
  for (uint8_t rcmd : {1, 2}) {
    std::vector<uint8_t> body = {rcmd, 1};
    body.insert(body.end(), kOther.begin(), kOther.end());
    bool refused = false;
    Frame f = One(Request(3, body), &refused);
    EXPECT_TRUE(refused);
    EXPECT_EQ(f.header.flags & kFlagError, kFlagError);
    EXPECT_EQ(f.header.error, static_cast<uint8_t>(AoeError::kUnrecognizedCommand));
    ExpectClientStillReads();
  }
  // A release (set with no MACs) is a change too.
  bool refused = false;
  Frame f = One(Request(3, {2, 0}), &refused);
  EXPECT_TRUE(refused);
  // Reading the reservation still works, and shows none.
  f = One(Request(3, {0, 0}), &refused);
  EXPECT_FALSE(refused);
  EXPECT_EQ(f.header.flags & kFlagError, 0);
  EXPECT_EQ(f.reserve.count, 0);
}

TEST_F(ReadOnlyControlTest, MacMaskEditsAreRefusedAndReadsWork) {
  std::vector<uint8_t> body = {0, 1, 0, 1, 0, 1};
  body.insert(body.end(), kOther.begin(), kOther.end());
  bool refused = false;
  Frame f = One(Request(2, body), &refused);
  EXPECT_TRUE(refused);
  EXPECT_EQ(f.header.error, static_cast<uint8_t>(AoeError::kUnrecognizedCommand));
  ExpectClientStillReads();
  f = One(Request(2, {0, 0, 0, 0}), &refused);
  EXPECT_FALSE(refused);
  EXPECT_EQ(f.header.flags & kFlagError, 0);
  EXPECT_EQ(f.mask.count, 0);
}

TEST_F(ReadOnlyControlTest, ConfigStringSetAndForceSetAreRefused) {
  for (uint8_t ccmd : {3, 4}) {
    std::vector<uint8_t> body = {0, 0, 0,   0,   0,  static_cast<uint8_t>(0x10 | ccmd),
                                 0, 3, 'b', 'a', 'd'};
    bool refused = false;
    Frame f = One(Request(1, body), &refused);
    EXPECT_TRUE(refused);
    EXPECT_EQ(f.header.error, static_cast<uint8_t>(AoeError::kConfigStringPresent));
    EXPECT_EQ(std::string(f.config.config.begin(), f.config.config.end()), "isoboot");
  }
  bool refused = false;
  Frame f = One(Request(1, {0, 0, 0, 0, 0, 0x10, 0, 0}), &refused);
  EXPECT_FALSE(refused);
  EXPECT_EQ(f.header.flags & kFlagError, 0);
  EXPECT_EQ(std::string(f.config.config.begin(), f.config.config.end()), "isoboot");
}

TEST_F(TargetTest, GroupSourceMacsAreDroppedUnanswered) {
  for (Mac src : {kBroadcastMac, Mac{0x01, 0x00, 0x5e, 0, 0, 1}, Mac{0x33, 0x33, 0, 0, 0, 1}}) {
    Sink sink;
    HandleResult r = target_.Handle(Ata(kAtaReadSectorsExt, 0, 2, 1, {}, src), sink);
    EXPECT_EQ(r.disposition, Disposition::kBadSource);
    auto qc = Request(1, kBroadcastShelf, kBroadcastSlot, src);
    qc.insert(qc.end(), 8, 0);
    EXPECT_EQ(target_.Handle(qc, sink).disposition, Disposition::kBadSource);
    EXPECT_TRUE(sink.frames.empty());
  }
}

TEST_F(TargetTest, FramesForOtherMacsAreDropped) {
  auto req = Ata(kAtaReadSectorsExt, 0, 1);
  for (Mac dst : {kOther, Mac{0x01, 0x80, 0xc2, 0, 0, 0}}) {
    std::copy(dst.begin(), dst.end(), req.begin());
    Sink sink;
    EXPECT_EQ(target_.Handle(req, sink).disposition, Disposition::kNotForUs);
    EXPECT_TRUE(sink.frames.empty());
  }
  std::copy(kBroadcastMac.begin(), kBroadcastMac.end(), req.begin());
  Sink sink;
  EXPECT_EQ(target_.Handle(req, sink).disposition, Disposition::kAnswered);
}

TEST(TargetSectors, FromMtu) {
  EXPECT_EQ(Target::SectorsForMtu(1500), 2);
  EXPECT_EQ(Target::SectorsForMtu(9000), 17);
  EXPECT_EQ(Target::SectorsForMtu(100), 1);
}

}  // namespace
}  // namespace isoboot::aoe
