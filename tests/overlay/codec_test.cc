// Pure parts of overlay/: trailer, manifest, mountinfo, path checks, globs;
// and a backup -> verify -> apply round trip on a plain directory.

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/file_io.h"
#include "overlay/backup.h"
#include "overlay/manifest.h"
#include "overlay/restore.h"
#include "overlay/trailer.h"
#include "overlay/transport.h"
#include "overlay/upper.h"
#include "tests/support/temp_dir.h"

namespace isoboot::overlay {
namespace {

Trailer Sample(Compression c) {
  Trailer t;
  t.compression = c;
  for (size_t i = 0; i < t.sha256.size(); ++i)
    t.sha256[i] = static_cast<uint8_t>(i * 7);
  t.size = 123456789;
  return t;
}

TEST(Trailer, RoundTripBoth) {
  for (auto c : {Compression::kZstd, Compression::kGzip}) {
    std::vector<uint8_t> bytes = {1, 2, 3};  // archive bytes before it
    AppendTrailer(Sample(c), bytes);
    EXPECT_EQ(bytes.size(), 3 + TrailerSize(c));
    auto t = ParseTrailer(bytes);
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->compression, c);
    EXPECT_EQ(t->sha256, Sample(c).sha256);
    EXPECT_EQ(t->size, 123456789u);
  }
}

TEST(Trailer, Malformed) {
  std::vector<uint8_t> good;
  AppendTrailer(Sample(Compression::kZstd), good);
  EXPECT_FALSE(ParseTrailer({}));
  EXPECT_FALSE(ParseTrailer(std::span(good).first(good.size() - 1)));
  for (size_t i :
       {size_t{0}, size_t{4}, size_t{10}, size_t{40}, good.size() - 1, good.size() - 5}) {
    auto bad = good;
    bad[i] ^= 0x41;
    EXPECT_FALSE(ParseTrailer(bad)) << "byte " << i;
  }
  std::vector<uint8_t> gz;
  AppendTrailer(Sample(Compression::kGzip), gz);
  gz[gz.size() - 9] = 1;  // the empty deflate block
  EXPECT_FALSE(ParseTrailer(gz));
}

TEST(Manifest, RoundTripOddNames) {
  Manifest m;
  m.entries = {{'d', 0, "", "."},
               {'f', 5, std::string(64, 'a'), "dir/with space/and%percent"},
               {'h', 0, "", "tab\there"},
               {'c', 0, "", "whiteout\n\x7f\xff"},
               {'l', 0, "", "u\xc3\xa9"}};
  std::vector<uint8_t> text;
  AppendManifest(m, text);
  auto back = ParseManifest(text);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->entries, m.entries);
}

TEST(Manifest, Malformed) {
  const std::string head = "isoboot-overlay-manifest 1\n";
  const std::string sha(64, '0');
  for (const std::string& body : std::vector<std::string>{
           std::string("x 0 - a\n"), std::string("f 1 - a\n"), "f 1 " + sha + " a",
           "d 0 " + sha + " a\n", "f 1 " + sha + " \n", "f -1 " + sha + " a\n",
           "f 1 " + sha + " a%4\n", "f 1 " + sha + " a%zz\n", std::string("d 0 -\n"),
           "f 99999999999999999999 " + sha + " a\n"}) {
    std::string all = head + body;
    EXPECT_FALSE(ParseManifest({reinterpret_cast<const uint8_t*>(all.data()), all.size()})) << body;
  }
  std::string no_header = "f 1 " + sha + " a\n";
  EXPECT_FALSE(
      ParseManifest({reinterpret_cast<const uint8_t*>(no_header.data()), no_header.size()}));
}

TEST(Upper, ParsesOverlayMounts) {
  const char* text =
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
      "98 22 0:44 / /run/my\\040root rw,relatime shared:50 - overlay overlay "
      "rw,lowerdir=/run/rootfsbase,upperdir=/run/overlayfs/rw,workdir=/run/overlayfs/"
      "work,redirect_dir=on\n"
      "99 22 0:45 / /ro rw - overlay overlay ro,lowerdir=/a:/b\n"
      "garbage line\n";
  auto mounts = ParseOverlayMounts(text);
  ASSERT_EQ(mounts.size(), 2u);
  EXPECT_EQ(mounts[0].mount_point, "/run/my root");
  EXPECT_EQ(mounts[0].upperdir, "/run/overlayfs/rw");
  EXPECT_EQ(mounts[0].workdir, "/run/overlayfs/work");
  EXPECT_EQ(mounts[0].lowerdir, "/run/rootfsbase");
  EXPECT_EQ(mounts[1].upperdir, "");
}

TEST(Restore, SafeRelativePath) {
  EXPECT_EQ(*SafeRelativePath("./a//b/./c"), "a/b/c");
  EXPECT_EQ(*SafeRelativePath("./"), ".");
  for (const char* bad : {"", "/etc/passwd", "..", "a/../../b", "a/..", "../x"}) {
    EXPECT_FALSE(SafeRelativePath(bad)) << bad;
  }
}

TEST(Backup, Excluded) {
  EXPECT_TRUE(Excluded("var/cache/big.squashfs", {"*.squashfs"}));
  EXPECT_TRUE(Excluded("tmp", {"tmp"}));
  EXPECT_TRUE(Excluded("var/tmp", {"tmp"}));  // a bare name matches at any depth
  EXPECT_TRUE(Excluded("var/log/x", {"var/log/*"}));
  EXPECT_FALSE(Excluded("var/log", {"var/log/*"}));
  EXPECT_FALSE(Excluded("a", {}));
}

class MemFileSink : public Sink {
 public:
  MemFileSink() : fd_(::memfd_create("test", 0)) {}
  void Write(std::span<const uint8_t> d) override { WriteAll(fd_.get(), d); }
  void Commit() override { committed = true; }
  int fd() const { return fd_.get(); }
  bool committed = false;

 private:
  UniqueFd fd_;
};

TEST(Backup, RoundTripPlainDirectory) {
  namespace fs = std::filesystem;
  test::TempDir scratch("overlay-codec");
  const fs::path& dir = scratch.path();
  fs::create_directories(dir / "src/sub");
  std::ofstream(dir / "src/sub/file") << "hello";
  fs::create_symlink("sub/file", dir / "src/link");
  fs::create_hard_link(dir / "src/sub/file", dir / "src/hard");
  for (auto c : {Compression::kZstd, Compression::kGzip}) {
    MemFileSink sink;
    BackupOptions options;
    options.upper = (dir / "src").string();
    options.compression = c;
    BackupStats stats = Backup(options, sink);
    EXPECT_TRUE(sink.committed);
    EXPECT_EQ(stats.hardlinks, 1u);
    EXPECT_EQ(stats.symlinks, 1u);
    auto verified = Verify(sink.fd());
    ASSERT_TRUE(verified) << verified.error().message;
    EXPECT_EQ(verified->manifest.entries.size(), stats.entries);
    fs::remove_all(dir / "dst");
    fs::create_directory(dir / "dst");
    RestoreOptions ro;
    ro.target = (dir / "dst").string();
    Apply(sink.fd(), *verified, ro);
    std::ifstream in(dir / "dst/sub/file");
    std::string content;
    in >> content;
    EXPECT_EQ(content, "hello");
    EXPECT_EQ(fs::read_symlink(dir / "dst/link"), "sub/file");
    EXPECT_EQ(fs::hard_link_count(dir / "dst/hard"), 2u);
  }
}

// A small archive that unpacks big (zeros, a sparse file's hole) or holds
// many entries is refused by Verify's limits, as the store needs for
// uploads it checks on an HTTP thread; at the limit it passes.
TEST(Restore, VerifyBoundsWhatItUnpacks) {
  namespace fs = std::filesystem;
  test::TempDir scratch("overlay-bound");
  const fs::path dir = scratch.path() / "src";
  fs::create_directories(dir);
  {
    std::ofstream zeros(dir / "zeros", std::ios::binary);
    zeros << std::string(4 << 20, '\0');
  }
  for (int i = 0; i < 10; ++i)
    std::ofstream(dir / ("f" + std::to_string(i))) << i;
  MemFileSink sink;
  BackupOptions options;
  options.upper = dir.string();
  BackupStats stats = Backup(options, sink);
  ASSERT_LT(stats.archive_bytes, 64u << 10);
  auto ok = Verify(sink.fd());
  ASSERT_TRUE(ok) << ok.error().message;
  auto big = Verify(sink.fd(), nullptr, VerifyLimits{.max_bytes = 1 << 20});
  ASSERT_FALSE(big);
  EXPECT_TRUE(big.error().Is(ErrorKind::kExhausted)) << big.error().message;
  EXPECT_NE(big.error().message.find("limit of 1 MiB"), std::string::npos) << big.error().message;
  auto many = Verify(sink.fd(), nullptr, VerifyLimits{.max_entries = 5});
  ASSERT_FALSE(many);
  EXPECT_TRUE(many.error().Is(ErrorKind::kExhausted)) << many.error().message;
  auto exact = Verify(sink.fd(), nullptr,
                      VerifyLimits{.max_bytes = uint64_t{64} << 20, .max_entries = stats.entries});
  EXPECT_TRUE(exact) << exact.error().message;

  // A hole is hashed as zeros: bounded before any hashing.
  fs::remove(dir / "zeros");
  { std::ofstream(dir / "sparse") << "x"; }
  fs::resize_file(dir / "sparse", uint64_t{256} << 20);
  MemFileSink sparse;
  Backup(options, sparse);
  auto holes = Verify(sparse.fd(), nullptr, VerifyLimits{.max_bytes = 64 << 20});
  ASSERT_FALSE(holes);
  EXPECT_TRUE(holes.error().Is(ErrorKind::kExhausted)) << holes.error().message;
}

}  // namespace
}  // namespace isoboot::overlay
