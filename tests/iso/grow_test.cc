#include "iso/grow.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include <gtest/gtest.h>

#include "iso/image.h"
#include "iso/node_image.h"
#include "tests/iso/test_util.h"

namespace isoboot::iso {
namespace {

namespace fs = std::filesystem;
using test::Quote;

AddedEntry File(std::string path, std::string data) {
  AddedEntry e;
  e.path = std::move(path);
  e.data = std::make_shared<const std::string>(std::move(data));
  return e;
}
using test::RunCommand;
using test::ScratchDir;

fs::path MakeBase(const ScratchDir& dir) {
  test::WriteFile(dir / "tree/boot/linux", test::RandomBytes(100000, 1));
  test::WriteFile(dir / "tree/boot/initrd", test::RandomBytes(50000, 2));
  test::WriteFile(dir / "tree/isolinux/isolinux.cfg",
                  "label live\n  kernel /boot/linux\n  append initrd=/boot/initrd quiet\n");
  test::WriteFile(dir / "tree/keep.txt", "unchanged\n");
  fs::path iso = dir / "base.iso";
  auto r = RunCommand("xorriso -as mkisofs -quiet -R -J -V GROWVOL -o " + Quote(iso) + " " +
                      Quote(dir / "tree") + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return iso;
}

// The grown image as a file, laid out as the served one is.
fs::path WriteGrown(const ScratchDir& dir, const Image& base, const GrownImage& g) {
  std::string bytes = test::ReadFile(base.path());
  bytes.resize(g.session_offset, '\0');
  std::copy(g.head.begin(), g.head.end(), bytes.begin());
  bytes.append(reinterpret_cast<const char*>(g.session.data()), g.session.size());
  fs::path out = dir / "grown.iso";
  test::WriteFile(out, bytes);
  return out;
}

std::string ReadAll(const Image& image, const std::string& path) {
  const Node* n = image.tree().Find(path);
  if (!n) return "<missing>";
  std::string out(n->size, '\0');
  image.Read(*n, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
  return out;
}

TEST(Grow, AddsAndReplacesFilesAndKeepsTheRestInPlace) {
  ScratchDir dir("grow");
  auto base = Image::Open(MakeBase(dir));
  ASSERT_TRUE(base) << base.error().message;
  std::vector<AddedEntry> entries;
  entries.push_back(File("/isolinux/isolinux.cfg", "replaced\n"));
  entries.push_back(File("/new/dir/file", test::RandomBytes(5000, 3)));
  AddedEntry symlink;
  symlink.type = AddedEntry::Type::kSymlink;
  symlink.path = "/new/link";
  symlink.target = "dir/file";
  entries.push_back(symlink);
  auto grown = Grow(**base, entries);
  ASSERT_TRUE(grown) << grown.error().message;
  EXPECT_EQ(grown->base_size, (*base)->size());
  EXPECT_EQ(grown->session_offset % 32768, 0u);
  EXPECT_GE(grown->session_offset, grown->base_size);
  EXPECT_LE(grown->head.size(), 65536u);
  EXPECT_GT(grown->head.size(), 16u * 2048);  // the descriptors from block 16 on

  auto node = Image::Open(WriteGrown(dir, **base, *grown).string());
  ASSERT_TRUE(node) << node.error().message;
  EXPECT_EQ((*node)->tree().volume_id, "GROWVOL");
  EXPECT_EQ(ReadAll(**node, "/isolinux/isolinux.cfg"), "replaced\n");
  EXPECT_EQ(ReadAll(**node, "/new/dir/file"), test::RandomBytes(5000, 3));
  const Node* link = (*node)->tree().Find("/new/link");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->link_target, "dir/file");
  // Unchanged files are where they were, in the base's bytes.
  for (const char* path : {"/boot/linux", "/boot/initrd", "/keep.txt"}) {
    const Node* before = (*base)->tree().Find(path);
    const Node* after = (*node)->tree().Find(path);
    ASSERT_NE(after, nullptr) << path;
    ASSERT_EQ(after->extents.size(), 1u);
    EXPECT_EQ(after->extents[0].offset, before->extents[0].offset) << path;
    EXPECT_EQ(ReadAll(**node, path), ReadAll(**base, path)) << path;
  }
  // The same inputs grow the same bytes.
  auto again = Grow(**base, entries);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->head, grown->head);
  EXPECT_EQ(again->session.size(), grown->session.size());
}

TEST(Grow, RefusesEntriesThatCannotBe) {
  ScratchDir dir("grow-bad");
  auto base = Image::Open(MakeBase(dir));
  ASSERT_TRUE(base);
  for (const char* path : {"relative", "/", "/a//b", "/boot", "/keep.txt/under", "/a/.."}) {
    auto r = Grow(**base, {File(path, "x")});
    EXPECT_FALSE(r.has_value()) << path;
  }
}

TEST(MakeNodeImage, NeedsAMenuForArguments) {
  ScratchDir dir("grow-menu");
  test::WriteFile(dir / "tree/boot/linux", "k");
  auto r = RunCommand("xorriso -as mkisofs -quiet -R -o " + Quote(dir / "plain.iso") + " " +
                      Quote(dir / "tree") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto base = Image::Open((dir / "plain.iso").string());
  ASSERT_TRUE(base);
  NodeImageSpec spec;
  spec.kernel_args = "hostname=n1";
  auto node = MakeNodeImage(**base, spec);
  ASSERT_FALSE(node.has_value());
  EXPECT_NE(node.error().message.find("no boot menu with a Linux entry"), std::string::npos)
      << node.error().message;
  spec.kernel_args = "a=\"quoted\"";
  EXPECT_FALSE(MakeNodeImage(**base, spec).has_value());
}

TEST(ReadHostTree, KeepsSymlinksInsideAndRefusesTheRest) {
  ScratchDir dir("host-tree");
  test::WriteFile(dir / "t/a.conf", "a\n");
  test::WriteFile(dir / "t/sub/b", "b\n");
  fs::create_symlink("../a.conf", dir / "t/sub/up");
  fs::create_symlink("b", dir / "t/sub/same");
  auto entries = ReadHostTree((dir / "t").string(), "/pitdata");
  ASSERT_TRUE(entries) << entries.error().message;
  std::map<std::string, const AddedEntry*> by_path;
  for (const AddedEntry& e : *entries)
    by_path[e.path] = &e;
  ASSERT_TRUE(by_path.count("/pitdata"));
  ASSERT_TRUE(by_path.count("/pitdata/sub/up"));
  EXPECT_EQ(by_path["/pitdata/sub/up"]->target, "../a.conf");
  EXPECT_EQ(*by_path["/pitdata/sub/b"]->data, "b\n");

  for (const char* target : {"/etc/passwd", "../../outside", "../..", "sub/../../x"}) {
    fs::remove(dir / "t/bad");
    fs::create_symlink(target, dir / "t/bad");
    auto bad = ReadHostTree((dir / "t").string(), "/pitdata");
    ASSERT_FALSE(bad.has_value()) << target;
    EXPECT_NE(bad.error().message.find("points out of"), std::string::npos) << bad.error().message;
  }
  fs::remove(dir / "t/bad");
  ASSERT_EQ(::mkfifo((dir / "t/fifo").c_str(), 0600), 0);
  auto fifo = ReadHostTree((dir / "t").string(), "/pitdata");
  ASSERT_FALSE(fifo.has_value());
  EXPECT_NE(fifo.error().message.find("FIFO"), std::string::npos);
  EXPECT_FALSE(ReadHostTree((dir / "none").string(), "/x").has_value());
}

}  // namespace
}  // namespace isoboot::iso
