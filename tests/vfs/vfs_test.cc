// What vfs.h promises: client paths are normalised in exactly three ways
// (leading slashes dropped, backslashes to slashes, repeated slashes
// collapsed) and nothing else, so a lookup finds only names that were added
// (no "..", no decoding, no case folding, no host paths); and every Source
// reads and reports contiguous spans only inside [0, size()).
#include "vfs/vfs.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "iso/image.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"

namespace isoboot::vfs {
namespace {

using namespace std::string_literals;

TEST(NormalizeClientPath, DropsLeadingAndRepeatedSlashesAndTurnsBackslashes) {
  EXPECT_EQ(NormalizeClientPath("boot/linux"), "boot/linux");
  EXPECT_EQ(NormalizeClientPath("/boot/linux"), "boot/linux");
  EXPECT_EQ(NormalizeClientPath("///boot//linux"), "boot/linux");
  EXPECT_EQ(NormalizeClientPath("\\boot\\linux"), "boot/linux");
  EXPECT_EQ(NormalizeClientPath("\\\\boot/\\/linux"), "boot/linux");
  EXPECT_EQ(NormalizeClientPath(""), "");
  EXPECT_EQ(NormalizeClientPath("/"), "");
  EXPECT_EQ(NormalizeClientPath("\\"), "");
}

TEST(NormalizeClientPath, RewritesNothingElse) {
  // Dot segments, escapes, case, NULs and trailing slashes stay as sent, so
  // they can only match a name that was added exactly so.
  EXPECT_EQ(NormalizeClientPath("a/../b"), "a/../b");
  EXPECT_EQ(NormalizeClientPath("/../etc/passwd"), "../etc/passwd");
  EXPECT_EQ(NormalizeClientPath("./a"), "./a");
  EXPECT_EQ(NormalizeClientPath("%2e%2e/%2E%2E/etc/passwd"), "%2e%2e/%2E%2E/etc/passwd");
  EXPECT_EQ(NormalizeClientPath("..%2fetc"), "..%2fetc");
  EXPECT_EQ(NormalizeClientPath("BOOT/Linux"), "BOOT/Linux");
  EXPECT_EQ(NormalizeClientPath("a\0b"s), "a\0b"s);
  EXPECT_EQ(NormalizeClientPath("a/"), "a/");
  EXPECT_EQ(NormalizeClientPath("C:\\boot\\linux"), "C:/boot/linux");
}

TEST(NormalizeClientPath, OutputIsCanonicalForAnyInput) {
  std::mt19937 rng(7);
  const std::string alphabet = "/\\.a%2e\0\xff"s;
  for (int i = 0; i < 20000; ++i) {
    std::string in(rng() % 12, '\0');
    for (char& c : in)
      c = alphabet[rng() % alphabet.size()];
    std::string out = NormalizeClientPath(in);
    ASSERT_FALSE(out.starts_with("/")) << out;
    ASSERT_EQ(out.find("//"), std::string::npos) << out;
    ASSERT_EQ(out.find('\\'), std::string::npos) << out;
    ASSERT_EQ(NormalizeClientPath(out), out) << "not idempotent";
  }
}

class TreeTest : public ::testing::Test {
 protected:
  TreeTest() {
    tree_.Add("boot/x86_64/linux", linux_);
    tree_.Add("pxelinux.cfg/default", menu_);
    tree_.Add("README", readme_);
  }
  SourcePtr linux_ = TextSource("kernel");
  SourcePtr menu_ = TextSource("default linux\n");
  SourcePtr readme_ = TextSource("read me");
  Tree tree_;
};

TEST_F(TreeTest, FindsAddedNamesInTheFormsClientsSend) {
  EXPECT_EQ(tree_.Lookup("boot/x86_64/linux"), linux_);
  EXPECT_EQ(tree_.Lookup("/boot/x86_64/linux"), linux_);
  EXPECT_EQ(tree_.Lookup("//boot///x86_64//linux"), linux_);
  EXPECT_EQ(tree_.Lookup("\\boot\\x86_64\\linux"), linux_);
  EXPECT_EQ(tree_.Lookup("pxelinux.cfg/default"), menu_);
  EXPECT_EQ(tree_.size(), 3u);
  EXPECT_EQ(tree_.Names(),
            (std::vector<std::string>{"README", "boot/x86_64/linux", "pxelinux.cfg/default"}));
}

TEST_F(TreeTest, ALayerShowsItsOwnEntriesFirstThenTheBaseThenTheFallback) {
  auto base = std::make_shared<const Tree>(tree_);
  Tree layer(base);
  SourcePtr own_menu = TextSource("node menu\n");
  layer.Add("pxelinux.cfg/default", own_menu);
  std::vector<std::string> asked;
  SourcePtr late = TextSource("decided late");
  layer.set_fallback([&](const std::string& name) -> SourcePtr {
    asked.push_back(name);
    return name == "pxelinux.cfg/01-52-54-00-12-34-56" ? late : nullptr;
  });
  EXPECT_EQ(layer.Lookup("pxelinux.cfg/default"), own_menu);
  EXPECT_EQ(layer.Lookup("/boot/x86_64/linux"), linux_);
  EXPECT_TRUE(asked.empty()) << "the fallback is asked only for names nobody has";
  EXPECT_EQ(layer.Lookup("//pxelinux.cfg/01-52-54-00-12-34-56"), late);
  EXPECT_EQ(layer.Lookup("pxelinux.cfg/01-52-54-00-00-00-01"), nullptr);
  EXPECT_EQ(layer.Lookup("../README"), nullptr);
  // Every miss reaches the fallback, as the tree normalised it.
  EXPECT_EQ(asked, (std::vector<std::string>{"pxelinux.cfg/01-52-54-00-12-34-56",
                                             "pxelinux.cfg/01-52-54-00-00-00-01", "../README"}));
  EXPECT_EQ(base->Lookup("pxelinux.cfg/default"), menu_) << "the base is not changed";
  EXPECT_EQ(layer.size(), 1u);
  EXPECT_EQ(layer.Names(),
            (std::vector<std::string>{"README", "boot/x86_64/linux", "pxelinux.cfg/default"}));
}

TEST_F(TreeTest, RefusesEverythingElse) {
  for (std::string bad : {
           "../boot/x86_64/linux"s,
           "boot/../boot/x86_64/linux"s,
           "boot/x86_64/../x86_64/linux"s,
           "./boot/x86_64/linux"s,
           "boot/./x86_64/linux"s,
           "%2e%2e/boot/x86_64/linux"s,
           "boot%2fx86_64%2flinux"s,
           "boot/x86_64/linux%00"s,
           "boot/x86_64/linux\0"s,
           "boot/x86_64/linux\0.cfg"s,
           "\0boot/x86_64/linux"s,
           "BOOT/x86_64/LINUX"s,
           "readme"s,
           "boot/x86_64/linux/"s,
           "boot/x86_64"s,
           "boot"s,
           ""s,
           "/"s,
           "."s,
           ".."s,
           "/etc/passwd"s,
           "../../../../etc/passwd"s,
           "..\\..\\etc\\passwd"s,
           "C:\\boot\\x86_64\\linux"s,
       }) {
    EXPECT_EQ(tree_.Lookup(bad), nullptr) << "'" << bad << "'";
  }
}

TEST_F(TreeTest, AnyLookupReturnsOnlyWhatWasAddedUnderThatName) {
  const std::set<const Source*> added = {linux_.get(), menu_.get(), readme_.get()};
  std::mt19937 rng(11);
  const std::vector<std::string> parts = {
      "boot", "x86_64", "linux", "README", "pxelinux.cfg", "default", "..",  ".",
      "/",    "//",     "\\",    "%2e",    "%2f",          "\0"s,     "etc", "passwd"};
  int found = 0;
  for (int i = 0; i < 50000; ++i) {
    std::string request;
    for (size_t n = 1 + rng() % 7; n > 0; --n)
      request += parts[rng() % parts.size()];
    SourcePtr s = tree_.Lookup(request);
    if (!s) continue;
    ++found;
    ASSERT_TRUE(added.count(s.get())) << request;
    // Found only when the request spells an added name up to the three rewrites.
    std::string name = NormalizeClientPath(request);
    ASSERT_EQ(tree_.Lookup(name), s) << request;
    ASSERT_EQ(name.find(".."), std::string::npos) << request;
    ASSERT_EQ(name.find('\0'), std::string::npos) << request;
  }
  EXPECT_GT(found, 0);  // the generator does reach real names
}

TEST_F(TreeTest, AddReplacesAnEntryOfTheSameName) {
  SourcePtr other = TextSource("other");
  tree_.Add("README", other);
  EXPECT_EQ(tree_.Lookup("README"), other);
  EXPECT_EQ(tree_.size(), 3u);
}

// Bounds every Source must keep: Read never returns bytes at or past size(),
// and Contiguous covers only [offset, size()).
void CheckBounds(const Source& s, const std::string& content) {
  ASSERT_EQ(s.size(), content.size());
  const uint64_t size = s.size();
  std::vector<uint8_t> buf(content.size() + 100, 0xee);
  auto all = s.Read(0, buf);
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(*all, content.size());
  EXPECT_EQ(std::string(buf.begin(), buf.begin() + static_cast<long>(*all)), content);
  EXPECT_EQ(buf[content.size()], 0xee) << "wrote past the bytes it returned";
  for (uint64_t at : {size, size + 1, size + 4096, uint64_t{1} << 40, ~uint64_t{0}}) {
    auto r = s.Read(at, buf);
    ASSERT_TRUE(r) << at;
    EXPECT_EQ(*r, 0u) << at;
    EXPECT_EQ(s.Contiguous(at), std::nullopt) << at;
  }
  if (size == 0) return;
  std::vector<uint8_t> tail(10);
  auto r = s.Read(size - 3, tail);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, std::min<uint64_t>(3, size));
  EXPECT_EQ(std::string(tail.begin(), tail.begin() + static_cast<long>(*r)),
            content.substr(size - 3));
  auto none = s.Read(1, std::span<uint8_t>());
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, 0u);
  // Every byte's span, where there is one, holds that byte and ends by size().
  for (uint64_t at : {uint64_t{0}, size / 2, size - 1}) {
    auto span = s.Contiguous(at);
    if (!span) continue;
    EXPECT_GE(span->length, 1u);
    EXPECT_LE(at + span->length, size) << "span runs past the end";
    uint8_t b = 0;
    ASSERT_EQ(::pread(span->fd, &b, 1, static_cast<off_t>(span->file_offset)), 1);
    EXPECT_EQ(static_cast<char>(b), content[at]) << at;
  }
}

TEST(Sources, TextReadsOnlyItsBytesAndHasNoFileSpans) {
  std::string text = "#!ipxe\nkernel linux\n";
  auto s = TextSource(text, 1700000000);
  EXPECT_EQ(s->mtime(), 1700000000);
  CheckBounds(*s, text);
  EXPECT_EQ(s->Contiguous(0), std::nullopt);
  CheckBounds(*TextSource(""), "");
  EXPECT_NE(TextSource("a")->Etag(), TextSource("b")->Etag());
}

TEST(Sources, HostFileKeepsToItsSize) {
  test::TempDir dir("vfs-host");
  std::string content = test::RandomBytes(10000, 1);
  test::WriteFile(dir / "f", content);
  auto s = HostFileSource((dir / "f").string());
  ASSERT_TRUE(s) << s.error().message;
  CheckBounds(**s, content);
  auto span = (*s)->Contiguous(100);
  ASSERT_TRUE(span);
  EXPECT_EQ(span->file_offset, 100u);
  EXPECT_EQ(span->length, content.size() - 100);

  test::WriteFile(dir / "empty", "");
  auto e = HostFileSource((dir / "empty").string());
  ASSERT_TRUE(e);
  CheckBounds(**e, "");
}

TEST(Sources, HostFileRefusesWhatIsNotARegularFile) {
  test::TempDir dir("vfs-host-bad");
  auto missing = HostFileSource((dir / "missing").string());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find((dir / "missing").string()), std::string::npos)
      << missing.error().message;
  EXPECT_FALSE(HostFileSource(dir.string()));
  EXPECT_FALSE(HostFileSource("/dev/null"));
}

// An ISO with a file, an empty file and symlinks pointing out of the tree.
class ImageTreeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("vfs-image");
    test::WriteFile(*dir_ / "root/boot/linux", test::RandomBytes(300000, 2));
    test::WriteFile(*dir_ / "root/empty", "");
    std::filesystem::create_symlink("/etc/passwd", *dir_ / "root/passwd");
    std::filesystem::create_symlink("../../etc/hostname", *dir_ / "root/boot/up");
    auto r = test::RunCommand("xorriso -as mkisofs -quiet -R -o " +
                              test::Quote((*dir_ / "test.iso").string()) + " " +
                              test::Quote((*dir_ / "root").string()) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto image = iso::Image::Open((*dir_ / "test.iso").string());
    ASSERT_TRUE(image) << image.error().message;
    image_ = std::shared_ptr<const iso::Image>(std::move(*image));
  }
  static void TearDownTestSuite() {
    image_.reset();
    delete dir_;
    dir_ = nullptr;
  }

  static test::TempDir* dir_;
  static std::shared_ptr<const iso::Image> image_;
};
test::TempDir* ImageTreeTest::dir_ = nullptr;
std::shared_ptr<const iso::Image> ImageTreeTest::image_;

TEST_F(ImageTreeTest, ServesRegularFilesOnlyUnderTheirImagePaths) {
  ASSERT_TRUE(image_);
  Tree tree;
  AddImageFiles(tree, image_);
  EXPECT_EQ(tree.Names(), (std::vector<std::string>{"boot/linux", "empty"}));
  EXPECT_NE(tree.Lookup("/boot/linux"), nullptr);
  // Symlinks are not served, so their targets outside the tree cannot be.
  EXPECT_EQ(tree.Lookup("passwd"), nullptr);
  EXPECT_EQ(tree.Lookup("boot/up"), nullptr);
  EXPECT_EQ(tree.Lookup("boot/../boot/linux"), nullptr);
  EXPECT_EQ(tree.Lookup("boot"), nullptr);

  Tree prefixed;
  AddImageFiles(prefixed, image_, "iso/");
  EXPECT_EQ(prefixed.Names(), (std::vector<std::string>{"iso/boot/linux", "iso/empty"}));
  EXPECT_EQ(prefixed.Lookup("boot/linux"), nullptr);
}

TEST_F(ImageTreeTest, ImageFilesKeepToTheirBytes) {
  ASSERT_TRUE(image_);
  Tree tree;
  AddImageFiles(tree, image_);
  CheckBounds(*tree.Lookup("boot/linux"), test::RandomBytes(300000, 2));
  CheckBounds(*tree.Lookup("empty"), "");
  auto whole = WholeImageSource(image_);
  CheckBounds(*whole, test::ReadFile(*dir_ / "test.iso"));
}

// Errors carry their kind (base/result.h): callers branch on it.
TEST(Sources, HostFileErrorsHaveAKind) {
  auto missing = HostFileSource("/nonexistent/isoboot-vfs-test");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(missing.error().os_error, ENOENT);
  auto directory = HostFileSource("/");
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().kind, ErrorKind::kInvalidInput);
}

}  // namespace
}  // namespace isoboot::vfs
