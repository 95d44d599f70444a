#include "iso/data_image.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "iso/image.h"
#include "tests/iso/test_util.h"

namespace isoboot::iso {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

// Reads the whole file at `path` inside `image`; "<missing>" when absent.
std::string Content(const Image& image, const std::string& path) {
  const Node* n = image.tree().Find(path);
  if (!n || n->type != NodeType::kRegular) return "<missing>";
  std::string out(n->size, '\0');
  size_t got = image.Read(*n, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
  out.resize(got);
  return out;
}

// A PIT-like config tree.
void MakeConfigs(const fs::path& root) {
  test::WriteFile(root / "system_config.yaml", "site-init: true\n");
  test::WriteFile(root / "prep/site-init/customizations.yaml", test::RandomBytes(70000, 7));
  test::WriteFile(root / "prep/empty", "");
  test::WriteFile(root / "a long name with spaces and ünïcødé.txt", "names\n");
  fs::create_directories(root / "empty-dir");
  fs::create_symlink("prep/site-init/customizations.yaml", root / "link-to-customizations");
  fs::create_symlink("../system_config.yaml", root / "prep/up-link");
  fs::permissions(root / "system_config.yaml", fs::perms(0600));
}

TEST(DataImageTest, WritesLabelNamesContentsAndSymlinks) {
  ScratchDir dir("data-image");
  MakeConfigs(dir / "tree");
  std::string out = (dir / "data.iso").string();
  auto r = WriteDataImage((dir / "tree").string(), "PITDATA", out);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, out);
  auto image = Image::Open(out);
  ASSERT_TRUE(image) << image.error().message;
  const Tree& t = (*image)->tree();
  EXPECT_EQ(t.volume_id, "PITDATA");
  EXPECT_EQ(t.names, NameSpace::kRockRidge);
  EXPECT_EQ(Content(**image, "/system_config.yaml"), "site-init: true\n");
  EXPECT_EQ(Content(**image, "/prep/site-init/customizations.yaml"), test::RandomBytes(70000, 7));
  EXPECT_EQ(Content(**image, "/prep/empty"), "");
  EXPECT_EQ(Content(**image, "/a long name with spaces and ünïcødé.txt"), "names\n");
  const Node* empty_dir = t.Find("/empty-dir");
  ASSERT_NE(empty_dir, nullptr);
  EXPECT_EQ(empty_dir->type, NodeType::kDirectory);
  const Node* link = t.Find("/link-to-customizations");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->type, NodeType::kSymlink);
  EXPECT_EQ(link->link_target, "prep/site-init/customizations.yaml");
  const Node* up = t.Find("/prep/up-link");
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->link_target, "../system_config.yaml");
  const Node* conf = t.Find("/system_config.yaml");
  ASSERT_NE(conf, nullptr);
  EXPECT_EQ(conf->mode & 07777, 0600u);
  EXPECT_EQ(conf->uid, 0u);
  // Nothing but the image is left next to it.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path()))
    ++entries;
  EXPECT_EQ(entries, 2u);  // tree/ and data.iso
}

TEST(DataImageTest, ReplacesAnOldImage) {
  ScratchDir dir("data-image-replace");
  test::WriteFile(dir / "tree/f", "new\n");
  test::WriteFile(dir / "data.iso", "an old image");
  auto r = WriteDataImage((dir / "tree").string(), "CONF_1", (dir / "data.iso").string());
  ASSERT_TRUE(r) << r.error().message;
  auto image = Image::Open((dir / "data.iso").string());
  ASSERT_TRUE(image) << image.error().message;
  EXPECT_EQ((*image)->tree().volume_id, "CONF_1");
  EXPECT_EQ(Content(**image, "/f"), "new\n");
}

TEST(DataImageTest, RefusesBadLabels) {
  for (const std::string& label : std::vector<std::string>{"", "pitdata", "PIT-DATA", "PIT DATA",
                                                           "PITDATA.", std::string(33, 'A')}) {
    EXPECT_FALSE(CheckDataLabel(label)) << label;
  }
  for (const std::string& label :
       std::vector<std::string>{"PITDATA", "A", "CONF_2", std::string(32, 'Z')}) {
    EXPECT_TRUE(CheckDataLabel(label)) << label;
  }
  ScratchDir dir("data-image-label");
  test::WriteFile(dir / "tree/f", "x");
  auto r = WriteDataImage((dir / "tree").string(), "pitdata", (dir / "data.iso").string());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("pitdata"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(dir / "data.iso"));
}

// Each tree must be refused with one line naming the offending path, and
// leave no file behind.
void ExpectRefused(const ScratchDir& dir, const fs::path& bad, const std::string& what) {
  std::string out = (dir / "data.iso").string();
  auto r = WriteDataImage((dir / "tree").string(), "PITDATA", out);
  ASSERT_FALSE(r) << what;
  const std::string& m = r.error().message;
  EXPECT_NE(m.find(bad.string()), std::string::npos) << what << ": " << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename(), "tree") << what << " left " << e.path();
}

TEST(DataImageTest, RefusesSymlinksLeadingOut) {
  struct Case {
    const char* link;
    const char* target;
  };
  for (Case c : {Case{"abs", "/etc/passwd"}, Case{"up", "../outside"},
                 Case{"sub/upup", "../../outside"}, Case{"sub/dotdot", "./.././.."}}) {
    ScratchDir dir("data-image-link");
    test::WriteFile(dir / "tree/sub/f", "x");
    fs::create_symlink(c.target, dir / "tree" / c.link);
    ExpectRefused(dir, dir / "tree" / c.link, c.link);
  }
  // Inside by its letters, outside through another symlink: r -> . is the
  // tree itself, so r/.. is its parent.
  ScratchDir dir("data-image-link-chain");
  test::WriteFile(dir / "tree/f", "x");
  fs::create_symlink(".", dir / "tree/r");
  fs::create_symlink("r/../tree/f", dir / "tree/sneaky");
  ExpectRefused(dir, dir / "tree/sneaky", "sneaky");
  // A loop of symlinks is refused too, not followed forever.
  ScratchDir loop("data-image-link-loop");
  test::WriteFile(loop / "tree/f", "x");
  fs::create_symlink("b", loop / "tree/a");
  fs::create_symlink("a", loop / "tree/b");
  ExpectRefused(loop, loop / "tree/a", "loop");
}

TEST(DataImageTest, RefusesSpecialFiles) {
  ScratchDir fifo("data-image-fifo");
  test::WriteFile(fifo / "tree/f", "x");
  ASSERT_EQ(mkfifo((fifo / "tree/pipe").c_str(), 0644), 0);
  ExpectRefused(fifo, fifo / "tree/pipe", "fifo");

  ScratchDir sock("data-image-sock");
  test::WriteFile(sock / "tree/f", "x");
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = (sock / "tree/sock").string();
  ASSERT_LT(path.size(), sizeof addr.sun_path);
  std::copy(path.begin(), path.end(), addr.sun_path);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  close(s);
  ExpectRefused(sock, sock / "tree/sock", "socket");
}

TEST(DataImageTest, RefusesUnreadableFiles) {
  ScratchDir dir("data-image-unreadable");
  test::WriteFile(dir / "tree/secret", "x");
  fs::permissions(dir / "tree/secret", fs::perms::none);
  if (geteuid() != 0) {
    ExpectRefused(dir, dir / "tree/secret", "unreadable");
    return;
  }
  // Root reads any file: the walk runs in a child that is user nobody.
  fs::permissions(dir.path(), fs::perms::all);
  fs::permissions(dir / "tree", fs::perms::all);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    auto r = WriteDataImage((dir / "tree").string(), "PITDATA", (dir / "data.iso").string());
    bool said = !r && r.error().message.find("unreadable") != std::string::npos &&
                r.error().message.find((dir / "tree/secret").string()) != std::string::npos;
    _exit(said && !fs::exists(dir / "data.iso") ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "as nobody, an unreadable file was not refused by name";
}

TEST(DataImageTest, RefusesTooDeepTrees) {
  ScratchDir dir("data-image-deep");
  fs::path deep = dir / "tree";
  for (int i = 0; i < 70; ++i)
    deep /= "d";
  test::WriteFile(deep / "f", "x");
  auto r = WriteDataImage((dir / "tree").string(), "PITDATA", (dir / "data.iso").string());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("deeper than 64"), std::string::npos) << r.error().message;
}

TEST(DataImageTest, RefusesAMissingDirectory) {
  ScratchDir dir("data-image-missing");
  auto r = WriteDataImage((dir / "nope").string(), "PITDATA", (dir / "data.iso").string());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("nope"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace isoboot::iso
