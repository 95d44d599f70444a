#include "iso/image.h"

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "iso/extract.h"
#include "tests/iso/test_util.h"

namespace isoboot::iso {
namespace {

namespace fs = std::filesystem;
using test::Quote;
using test::RunCommand;
using test::ScratchDir;

// A tree with what real images contain and what breaks naive readers.
void MakeTree(const fs::path& root) {
  test::WriteFile(root / "boot/x86_64/loader/linux", test::RandomBytes(300000, 1));
  test::WriteFile(root / "boot/x86_64/loader/initrd", test::RandomBytes(2048 * 3, 2));
  test::WriteFile(root / "empty", "");
  test::WriteFile(root / "dir with spaces/ünïcødé-名前-Ωμέγα.txt", "non-ascii\n");
  test::WriteFile(root / std::string(200, 'L'), "a 200 character name\n");
  fs::path deep = root;
  for (int i = 0; i < 12; ++i)
    deep /= "level" + std::to_string(i);
  test::WriteFile(deep / "deep.txt", "twelve levels down\n");
  fs::create_symlink("loader/linux", root / "boot/x86_64/kernel-link");
  fs::create_symlink("/etc/passwd", root / "absolute-link");
  fs::create_directories(root / "empty-dir");
  fs::permissions(root / "boot/x86_64/loader/linux", fs::perms(0755));
  fs::permissions(root / "empty", fs::perms(0600));
}

// Builds an ISO from `tree` with xorriso's mkisofs emulation and `flags`.
fs::path MakeIso(const ScratchDir& dir, const fs::path& tree, const std::string& flags) {
  fs::path iso = dir / "test.iso";
  auto r = RunCommand("xorriso -as mkisofs -quiet " + flags + " -V TESTVOL -o " + Quote(iso) + " " +
                      Quote(tree) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return iso;
}

TEST(ImageTest, ReadsRockRidgeTreeWithExtents) {
  ScratchDir dir("iso-rr");
  MakeTree(dir / "tree");
  auto image = Image::Open(MakeIso(dir, dir / "tree", "-R -J -joliet-long"));
  ASSERT_TRUE(image) << image.error().message;
  const Tree& t = (*image)->tree();
  EXPECT_EQ(t.volume_id, "TESTVOL");
  EXPECT_EQ(t.names, NameSpace::kRockRidge);

  const Node* linux = t.Find("/boot/x86_64/loader/linux");
  ASSERT_NE(linux, nullptr);
  EXPECT_EQ(linux->size, 300000u);
  EXPECT_EQ(linux->mode & 07777, 0755u);
  ASSERT_EQ(linux->extents.size(), 1u);
  EXPECT_EQ(linux->extents[0].offset % 2048, 0u);
  // The extent really holds the file's bytes.
  std::string bytes(300000, '\0');
  ASSERT_EQ(
      (*image)->Read(*linux, 0, std::span(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size())),
      300000u);
  EXPECT_EQ(bytes, test::RandomBytes(300000, 1));

  const Node* link = t.Find("boot/x86_64/kernel-link");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->type, NodeType::kSymlink);
  EXPECT_EQ(link->link_target, "loader/linux");
  EXPECT_NE(t.Find("/dir with spaces/ünïcødé-名前-Ωμέγα.txt"), nullptr);
  EXPECT_NE(t.Find("/" + std::string(200, 'L')), nullptr);
  EXPECT_NE(t.Find("/level0/level1/level2/level3/level4/level5/level6/level7/level8/level9/"
                   "level10/level11/deep.txt"),
            nullptr);
  const Node* empty = t.Find("/empty");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->size, 0u);
  EXPECT_TRUE(empty->extents.empty());
  EXPECT_EQ(t.Find("/missing"), nullptr);
  EXPECT_EQ(t.Find("/empty/below-a-file"), nullptr);
  EXPECT_EQ(t.PathOf(*linux), "/boot/x86_64/loader/linux");
  EXPECT_EQ(t.PathOf(t.root()), "/");
}

TEST(ImageTest, ReadsPartialFileRangesAcrossTheEnd) {
  ScratchDir dir("iso-read");
  MakeTree(dir / "tree");
  auto image = Image::Open(MakeIso(dir, dir / "tree", "-R"));
  ASSERT_TRUE(image) << image.error().message;
  const Node* linux = (*image)->tree().Find("/boot/x86_64/loader/linux");
  ASSERT_NE(linux, nullptr);
  std::string expected = test::RandomBytes(300000, 1);
  std::vector<uint8_t> buf(5000);
  EXPECT_EQ((*image)->Read(*linux, 12345, buf), 5000u);
  EXPECT_EQ(std::string(buf.begin(), buf.end()), expected.substr(12345, 5000));
  EXPECT_EQ((*image)->Read(*linux, 299000, buf), 1000u);
  EXPECT_EQ((*image)->Read(*linux, 300000, buf), 0u);
}

TEST(ImageTest, FallsBackToJolietThenIso9660Names) {
  ScratchDir dir("iso-joliet");
  test::WriteFile(dir / "tree/MixedCase-Name.txt", "joliet keeps case\n");
  {
    auto image = Image::Open(MakeIso(dir, dir / "tree", "--norock -J"));
    ASSERT_TRUE(image) << image.error().message;
    EXPECT_EQ((*image)->tree().names, NameSpace::kJoliet);
    EXPECT_NE((*image)->tree().Find("/MixedCase-Name.txt"), nullptr);
  }
  fs::remove(dir / "test.iso");
  {
    auto image = Image::Open(MakeIso(dir, dir / "tree", "--norock"));
    ASSERT_TRUE(image) << image.error().message;
    EXPECT_EQ((*image)->tree().names, NameSpace::kIso9660);
    // Plain ISO 9660 level 1 names: 8.3 upper case d-characters, the ";1"
    // version stripped.
    ASSERT_EQ((*image)->tree().root().children.size(), 1u);
    EXPECT_EQ((*image)->tree().nodes[1].name, "MIXEDCAS.TXT");
  }
}

TEST(ImageTest, ExtractReproducesTheTreeByteForByte) {
  ScratchDir dir("iso-extract");
  MakeTree(dir / "tree");
  fs::path iso = MakeIso(dir, dir / "tree", "-R -J -joliet-long");
  auto r = RunCommand(test::IsobootBin() + " iso extract " + Quote(iso) + " -C " +
                      Quote(dir / "out") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // diff -r follows nothing and compares symlink targets with --no-dereference.
  auto diff = RunCommand("diff -r --no-dereference " + Quote(dir / "tree") + " " +
                         Quote(dir / "out") + " 2>&1");
  EXPECT_EQ(diff.exit_code, 0) << diff.out;
  for (const auto& e : fs::recursive_directory_iterator(dir / "tree")) {
    fs::path rel = e.path().lexically_relative(dir / "tree");
    struct stat a {
    }, b{};
    ASSERT_EQ(::lstat(e.path().c_str(), &a), 0);
    ASSERT_EQ(::lstat((dir / "out" / rel).c_str(), &b), 0) << rel;
    EXPECT_EQ(a.st_mode, b.st_mode) << rel;
    if (!S_ISLNK(a.st_mode)) {
      EXPECT_EQ(a.st_mtime, b.st_mtime) << rel;
    }
  }
}

TEST(ImageTest, ExtractSelectedPathsKeepsTheirPlace) {
  ScratchDir dir("iso-extract-sel");
  MakeTree(dir / "tree");
  fs::path iso = MakeIso(dir, dir / "tree", "-R");
  auto r = RunCommand(test::IsobootBin() + " iso extract " + Quote(iso) +
                      " /boot/x86_64/loader/initrd /empty-dir -C " + Quote(dir / "out") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(test::ReadFile(dir / "out/boot/x86_64/loader/initrd"), test::RandomBytes(2048 * 3, 2));
  EXPECT_TRUE(fs::is_directory(dir / "out/empty-dir"));
  EXPECT_FALSE(fs::exists(dir / "out/boot/x86_64/loader/linux"));
}

TEST(ImageTest, ExtractNeverWritesThroughSymlinksOutsideTheTarget) {
  ScratchDir dir("iso-escape");
  // The image holds a symlink "boot" -> outside, and the target already has
  // such a link where the image wants a directory.
  test::WriteFile(dir / "tree/boot/x86_64/loader/linux", "kernel");
  fs::path iso = MakeIso(dir, dir / "tree", "-R");
  fs::create_directories(dir / "outside");
  fs::create_directories(dir / "out");
  fs::create_directory_symlink(dir / "outside", dir / "out/boot");
  auto r = RunCommand(test::IsobootBin() + " iso extract " + Quote(iso) + " -C " +
                      Quote(dir / "out") + " 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("refusing to follow"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::is_empty(dir / "outside"));
}

// Parses `xorriso -find / -exec lsdl` and `isoboot iso ls -lR` into
// path -> "mode uid gid [size]" and checks they agree.
std::map<std::string, std::string> ParseListing(const std::string& text, bool xorriso) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  // mode nlink? uid gid size date... path
  std::regex xr(
      R"(^(\S{10})\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+\w{3}\s+\d+\s+[\d:]+\s+'(.*?)'(?: -> '.*')?$)");
  std::regex ir(R"(^(\S{10})\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s+(/.*?)(?: -> .*)?$)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (!std::regex_match(line, m, xorriso ? xr : ir)) continue;
    std::string mode = m[1];
    std::string value = mode + " " + m[2].str() + " " + m[3].str();
    if (mode[0] == '-') value += " " + m[4].str();
    out[m[5]] = value;
  }
  return out;
}

TEST(ImageTest, LongListingAgreesWithXorriso) {
  ScratchDir dir("iso-ls");
  MakeTree(dir / "tree");
  fs::path iso = MakeIso(dir, dir / "tree", "-R -J -joliet-long");
  auto ours = RunCommand(test::IsobootBin() + " iso ls -l -R " + Quote(iso));
  ASSERT_EQ(ours.exit_code, 0);
  auto theirs = RunCommand("xorriso -indev " + Quote(iso) + " -find / -exec lsdl -- 2>/dev/null");
  ASSERT_EQ(theirs.exit_code, 0);
  auto a = ParseListing(ours.out, false);
  auto b = ParseListing(theirs.out, true);
  b.erase("/");
  EXPECT_GT(a.size(), 20u);
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace isoboot::iso
