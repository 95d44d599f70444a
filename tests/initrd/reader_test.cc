#include "initrd/reader.h"

#include <algorithm>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "initrd/transports.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"

namespace isoboot::initrd {
namespace {

using test::Quote;
using test::ReadFile;
using test::RunCommand;
using test::TempDir;
using test::WriteFile;

std::vector<uint8_t> Bytes(const std::string& s) {
  return {s.begin(), s.end()};
}

bool WantScripts(std::string_view path) {
  return WantsContents(path);
}

// An initrd as Debian and dracut build them: an uncompressed early cpio
// (microcode) made by GNU cpio, then the main archive compressed by `tool`.
std::string MakeInitrd(const TempDir& dir, const std::string& tool) {
  auto root = dir.path() / "root";
  WriteFile(root / "early/kernel/x86/microcode/GenuineIntel.bin", "microcode");
  WriteFile(root / "main/usr/lib/kiwi-live-lib.sh", "#!/bin/bash\n# AOEINTERFACE=e0.1\n");
  WriteFile(root / "main/usr/lib/modules/6.1.0-50-amd64/kernel/drivers/block/aoe/aoe.ko", "ko");
  WriteFile(root / "main/usr/lib/dracut/dracut-059-4", "");
  auto out = dir.path() / ("initrd." + tool);
  std::string cmd = fmt::format(
      "set -e; cd {0}/early && find . | LC_ALL=C sort | cpio -o -H newc --quiet > {1}; "
      "cd {0}/main && find . | LC_ALL=C sort | cpio -o -H newc --quiet | {2} >> {1}",
      Quote(root.string()), Quote(out.string()), tool);
  auto r = RunCommand(cmd);
  if (r.exit_code != 0) throw std::runtime_error("failed: " + cmd);
  return ReadFile(out);
}

TEST(ReaderTest, RealInitrdsInEachCompression) {
  for (std::string tool :
       {"cat", "gzip -9", "xz --check=crc32", "zstd -q -19", "lz4 -l -q", "bzip2", "lzma"}) {
    TempDir dir;
    std::string bytes = MakeInitrd(dir, tool);
    auto files = ReadInitrd(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
                            WantScripts);
    ASSERT_TRUE(files) << tool << ": " << files.error().message;
    auto has = [&](const std::string& p) {
      return std::find(files->paths.begin(), files->paths.end(), p) != files->paths.end();
    };
    EXPECT_TRUE(has("kernel/x86/microcode/GenuineIntel.bin")) << tool;
    EXPECT_TRUE(has("usr/lib/modules/6.1.0-50-amd64/kernel/drivers/block/aoe/aoe.ko")) << tool;
    EXPECT_EQ(files->contents["usr/lib/kiwi-live-lib.sh"], "#!/bin/bash\n# AOEINTERFACE=e0.1\n")
        << tool;
    EXPECT_EQ(files->contents.size(), 1u) << tool;
    if (tool != "cat") {
      ASSERT_EQ(files->members.size(), 2u) << tool;
      EXPECT_EQ(files->members[0], Compression::kNone);
      EXPECT_EQ(std::string(ToString(files->members[1])), tool.substr(0, tool.find(' '))) << tool;
    }
    auto support = DetectRootSupport(*files);
    EXPECT_TRUE(support.Best(Transport::kAoe)) << tool << ": " << support.Summary();
    EXPECT_EQ(support.name, "kiwi-live, dracut 059-4");
  }
}

// GNU cpio's 070702 ("crc") archives sum the bytes the way the parser
// checks them; a changed data byte is found.
TEST(ReaderTest, GnuCpioCrcArchiveIsCheckedAsTheKernelChecksIt) {
  TempDir dir;
  auto root = dir.path() / "root";
  WriteFile(root / "usr/lib/kiwi-live-lib.sh", "#!/bin/bash\n# AOEINTERFACE=e0.1 \xff\xfe\n");
  auto out = dir.path() / "initrd.crc";
  std::string cmd =
      fmt::format("set -e; cd {} && find . | LC_ALL=C sort | cpio -o -H crc --quiet > {}",
                  Quote(root.string()), Quote(out.string()));
  ASSERT_EQ(RunCommand(cmd).exit_code, 0) << cmd;
  std::string bytes = ReadFile(out);
  ASSERT_EQ(bytes.substr(0, 6), "070702");
  auto files = ReadInitrd(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
                          WantScripts);
  ASSERT_TRUE(files) << files.error().message;
  EXPECT_EQ(files->contents["usr/lib/kiwi-live-lib.sh"],
            "#!/bin/bash\n# AOEINTERFACE=e0.1 \xff\xfe\n");
  size_t at = bytes.find("AOEINTERFACE");
  ASSERT_NE(at, std::string::npos);
  bytes[at] = 'B';
  files = ReadInitrd(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
                     WantScripts);
  ASSERT_FALSE(files);
  EXPECT_NE(files.error().message.find("its data bytes sum to"), std::string::npos)
      << files.error().message;
}

TEST(ReaderTest, CorruptAndOversizedInitrdsGiveOneLineErrors) {
  TempDir dir;
  std::string bytes = MakeInitrd(dir, "gzip");
  // Cut inside the compressed member.
  std::string cut = bytes.substr(0, bytes.size() - 40);
  auto r = ReadInitrd(Bytes(cut), WantScripts);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  EXPECT_NE(r.error().message.find("gzip member"), std::string::npos) << r.error().message;
  // Garbage where a member should start.
  std::string junk = bytes.substr(0, 512) + std::string(100, 'Q');
  auto j = ReadInitrd(Bytes(MakeInitrd(dir, "cat") + "QQQQ"), WantScripts);
  ASSERT_FALSE(j);
  EXPECT_NE(j.error().message.find("neither a cpio archive nor a compressed member"),
            std::string::npos)
      << j.error().message;
  // A bound on what it unpacks to.
  ReadLimits tiny;
  tiny.max_unpacked = 1024;
  auto big = ReadInitrd(Bytes(bytes), WantScripts, tiny);
  ASSERT_FALSE(big);
  EXPECT_TRUE(big.error().Is(ErrorKind::kExhausted)) << big.error().message;
}

// Found by initrd_cpio_fuzz: a gzip member libarchive rejects without an
// error message (a null string) is a one-line error, not a crash.
TEST(ReaderTest, AMemberLibarchiveRejectsSilentlyIsAnError) {
  std::string bytes = ReadFile(std::string(ISOBOOT_TEST_SOURCE_DIR) +
                               "/tests/data/fuzz/initrd_cpio_fuzz/regression-null-archive-error");
  ASSERT_FALSE(bytes.empty());
  auto r = ReadInitrd(Bytes(bytes), WantScripts);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace isoboot::initrd
