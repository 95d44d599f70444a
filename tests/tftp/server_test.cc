#include "tftp/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "../iso/test_util.h"
#include "base/unique_fd.h"
#include "iso/image.h"

// The server in-process on 127.0.0.1 against clients nobody here wrote:
// curl, tftp-hpa's tftp and atftp, comparing bytes with cmp. The files come
// from an ISO built with xorriso (ImageFileSource), a host file and text.

namespace isoboot::tftp {
namespace {

using test::Quote;
using test::RunCommand;

constexpr size_t kMiB = 1 << 20;

class TftpServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::ScratchDir("tftp-server");
    auto root = *dir_ / "root";
    // > 65535 blocks at blksize 512: block numbers must wrap.
    test::WriteFile(root / "boot/x86_64/loader/linux", test::RandomBytes(40 * kMiB + 123, 1));
    test::WriteFile(root / "boot/x86_64/loader/initrd", test::RandomBytes(3 * kMiB + 7, 2));
    test::WriteFile(root / "exact512", test::RandomBytes(512 * 300, 3));
    test::WriteFile(root / "exact1432", test::RandomBytes(1432 * 100, 4));
    test::WriteFile(root / "exact1468", test::RandomBytes(1468 * 100, 6));
    test::WriteFile(root / "one", test::RandomBytes(kMiB, 5));
    test::WriteFile(root / "empty", "");
    auto iso = (*dir_ / "live.iso").string();
    auto r = RunCommand("xorriso -as mkisofs -quiet -R -V TFTPTEST -o " + Quote(iso) + " " +
                        Quote(root.string()) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto image = iso::Image::Open(iso);
    ASSERT_TRUE(image) << image.error().message;
    std::shared_ptr<const iso::Image> shared(std::move(*image));
    auto tree = std::make_shared<vfs::Tree>();
    vfs::AddImageFiles(*tree, shared);
    tree->Add("pxelinux.cfg/default",
              vfs::TextSource("default linux\nlabel linux\n  kernel linux\n"));
    test::WriteFile(*dir_ / "host.bin", test::RandomBytes(200000, 7));
    auto host = vfs::HostFileSource((*dir_ / "host.bin").string());
    ASSERT_TRUE(host) << host.error().message;
    tree->Add("host.bin", *host);
    tree_ = tree;
  }
  static void TearDownTestSuite() {
    delete dir_;
    tree_.reset();
  }

  void SetUp() override { ASSERT_TRUE(tree_) << "suite setup failed"; }
  void TearDown() override { StopServer(); }

  // `also`: called in the hook too, on the loop's thread.
  void StartServer(ServerConfig config = {}, std::function<void()> also = nullptr) {
    config.address = "127.0.0.1";
    config.port = 0;
    config.on_transfer = [this, also](const TransferRecord& r) {
      if (also) also();
      std::lock_guard lock(mu_);
      records_.push_back(r);
    };
    server_ = std::make_unique<Server>(
        config,
        [this](std::string_view) {
          std::lock_guard lock(mu_);
          return tree_override_ ? tree_override_ : tree_;
        },
        GetLogger("tftp"));
    thread_ = std::thread([this] { server_->Run(); });
    url_ = "tftp://127.0.0.1:" + std::to_string(server_->port()) + "/";
  }
  void StopServer() {
    if (!server_) return;
    server_->Stop();
    thread_.join();
    server_.reset();
  }

  std::string Out(const std::string& name) { return (*dir_ / ("out-" + name)).string(); }
  std::string Orig(const std::string& name) { return (*dir_ / "root" / name).string(); }
  static bool Same(const std::string& a, const std::string& b) {
    return RunCommand("cmp " + Quote(a) + " " + Quote(b) + " >&2").exit_code == 0;
  }
  std::vector<TransferRecord> Records() {
    std::lock_guard lock(mu_);
    return records_;
  }

  static test::ScratchDir* dir_;
  static std::shared_ptr<const vfs::Tree> tree_;
  std::shared_ptr<const vfs::Tree> tree_override_;
  std::mutex mu_;
  std::vector<TransferRecord> records_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::string url_;
};

test::ScratchDir* TftpServerTest::dir_ = nullptr;
std::shared_ptr<const vfs::Tree> TftpServerTest::tree_;

TEST_F(TftpServerTest, CurlFetchesFilesAtEveryBlksize) {
  ServerConfig config;
  config.transfer.limits.max_blksize = kMaxBlksize;  // loopback: allow 65464
  StartServer(config);
  for (int blksize : {512, 1432, 1468, 65464}) {
    for (std::string name :
         {"boot/x86_64/loader/initrd", "exact512", "exact1432", "exact1468", "one", "empty"}) {
      std::string out = Out("curl");
      auto r = RunCommand("curl -sS --max-time 120 --tftp-blksize " + std::to_string(blksize) +
                          " -o " + Quote(out) + " " + url_ + name + " 2>&1");
      ASSERT_EQ(r.exit_code, 0) << name << " blksize " << blksize << ": " << r.out;
      EXPECT_TRUE(Same(out, Orig(name))) << name << " blksize " << blksize;
    }
  }
  std::string out = Out("curl");
  auto r = RunCommand("curl -sS --max-time 60 -o " + Quote(out) + " " + url_ + "host.bin 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(Same(out, (*dir_ / "host.bin").string()));
  r = RunCommand("curl -sS --max-time 60 " + url_ + "pxelinux.cfg/default");
  EXPECT_EQ(r.out, "default linux\nlabel linux\n  kernel linux\n");
}

TEST_F(TftpServerTest, CurlRolloverAt512) {
  StartServer();
  std::string out = Out("curl-linux");
  auto r = RunCommand("curl -sS --max-time 600 --tftp-blksize 512 -o " + Quote(out) + " " + url_ +
                      "boot/x86_64/loader/linux 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(Same(out, Orig("boot/x86_64/loader/linux")));
  auto recs = Records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].outcome, Outcome::kComplete);
  EXPECT_EQ(recs[0].blksize, 512u);
  EXPECT_EQ(recs[0].bytes, 40 * kMiB + 123);
}

TEST_F(TftpServerTest, MissingFilesAnsweredWithError) {
  StartServer();
  // curl: exit 68 is "TFTP: file not found".
  for (std::string name :
       {"pxelinux.cfg/01-52-54-00-12-34-56", "pxelinux.cfg/C0A80001", "../etc/passwd",
        "%2e%2e/etc/passwd", "/etc/passwd", "boot/../../etc/passwd"}) {
    auto r = RunCommand("curl -sS --max-time 30 -o /dev/null " + url_ + name + " 2>&1");
    EXPECT_EQ(r.exit_code, 68) << name << ": " << r.out;
  }
  auto r = RunCommand("tftp -m binary 127.0.0.1 " + std::to_string(server_->port()) +
                      " -c get nothing " + Quote(Out("hpa-missing")) + " 2>&1");
  EXPECT_NE(r.out.find("Error code 1"), std::string::npos) << r.out;
  r = RunCommand("atftp -g -r nothing -l " + Quote(Out("atftp-missing")) + " 127.0.0.1 " +
                 std::to_string(server_->port()) + " 2>&1");
  EXPECT_NE(r.exit_code, 0) << r.out;
  for (const auto& rec : Records())
    EXPECT_EQ(rec.outcome, Outcome::kRejected) << rec.filename;
}

TEST_F(TftpServerTest, TftpHpaFetchesWithoutOptionsIncludingRollover) {
  StartServer();
  std::string port = std::to_string(server_->port());
  for (std::string name :
       {"exact512", "one", "empty", "pxelinux.cfg/default", "boot/x86_64/loader/linux"}) {
    std::string out = Out("hpa");
    auto r = RunCommand("timeout 600 tftp -m binary 127.0.0.1 " + port + " -c get " + Quote(name) +
                        " " + Quote(out) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.out;
    EXPECT_EQ(r.out, "") << name;  // tftp-hpa prints only errors
    std::string orig = name == "pxelinux.cfg/default" ? "" : Orig(name);
    if (!orig.empty()) {
      EXPECT_TRUE(Same(out, orig)) << name;
    }
  }
  // netascii (tftp-hpa's default mode) turns CR LF back into LF.
  std::string out = Out("hpa-ascii");
  auto r =
      RunCommand("tftp 127.0.0.1 " + port + " -c get pxelinux.cfg/default " + Quote(out) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(test::ReadFile(out), "default linux\nlabel linux\n  kernel linux\n");
}

TEST_F(TftpServerTest, AtftpWithWindowsAndRollover) {
  StartServer();
  std::string port = std::to_string(server_->port());
  struct Case {
    std::string name, options;
  };
  std::vector<Case> cases = {
      {"boot/x86_64/loader/initrd",
       "--option 'blksize 1468' --option 'windowsize 16' --option tsize"},
      {"boot/x86_64/loader/initrd", "--option 'blksize 1432' --option 'windowsize 1'"},
      {"exact1468", "--option 'blksize 1468' --option 'windowsize 7'"},
      {"exact1432", "--option 'blksize 65464' --option 'timeout 2'"},
      {"empty", "--option tsize"},
      {"boot/x86_64/loader/linux", "--option 'blksize 512' --option 'windowsize 8'"},
  };
  for (const auto& c : cases) {
    std::string out = Out("atftp");
    auto r = RunCommand("timeout 600 atftp -g -r " + Quote(c.name) + " -l " + Quote(out) + " " +
                        c.options + " 127.0.0.1 " + port + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << c.name << " " << c.options << ": " << r.out;
    EXPECT_TRUE(Same(out, Orig(c.name))) << c.name << " " << c.options;
  }
  auto recs = Records();
  ASSERT_EQ(recs.size(), cases.size());
  EXPECT_EQ(recs[0].windowsize, 16u);
  EXPECT_EQ(recs[0].blksize, 1468u);
  EXPECT_EQ(recs[3].blksize, 1468u);  // clamped to the default path-MTU limit
}

TEST_F(TftpServerTest, TwoHundredConcurrentCurls) {
  ServerConfig config;
  config.max_transfers_per_client = 256;  // all 200 come from 127.0.0.1
  StartServer(config);
  auto out_dir = *dir_ / "many";
  std::filesystem::create_directories(out_dir);
  // One shell starts every curl before waiting for any.
  std::string script =
      "pids=''; for i in $(seq 1 200); do curl -sS --max-time 300 --tftp-blksize 1468 -o " +
      Quote(out_dir.string()) + "/$i " + url_ +
      "one & pids=\"$pids $!\"; done; fail=0; for p in $pids; do wait $p || fail=1; done; "
      "exit $fail";
  auto r = RunCommand("bash -c " + Quote(script) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (int i = 1; i <= 200; ++i)
    ASSERT_TRUE(Same((out_dir / std::to_string(i)).string(), Orig("one"))) << i;
  auto s = server_->stats();
  EXPECT_EQ(s.completed, 200u);
  EXPECT_EQ(s.active, 0u);
}

// Several event loops: 48 curls, 8 tftp-hpa and 8 atftp clients (windowsize
// 4) at once, from different ports, so the kernel spreads them over the
// loops; every byte arrives, the hooks run on more than one thread, and the
// counters add up across loops.
TEST_F(TftpServerTest, ConcurrentClientsOverSeveralLoops) {
  ServerConfig config;
  config.threads = 4;
  std::mutex threads_mu;
  std::set<std::thread::id> hook_threads;
  StartServer(config, [&] {
    std::lock_guard lock(threads_mu);
    hook_threads.insert(std::this_thread::get_id());
  });
  ASSERT_EQ(server_->stats().threads, 4u);
  auto out_dir = *dir_ / "loops";
  std::filesystem::create_directories(out_dir);
  const std::string out = Quote(out_dir.string());
  const std::string port = std::to_string(server_->port());
  std::string script =
      "pids=''; for i in $(seq 1 48); do curl -sS --max-time 300 --tftp-blksize 1432 -o " + out +
      "/curl$i " + url_ +
      "boot/x86_64/loader/initrd & pids=\"$pids $!\"; done; "
      "for i in $(seq 1 8); do timeout 300 tftp -m binary 127.0.0.1 " +
      port + " -c get one " + out +
      "/hpa$i & pids=\"$pids $!\"; "
      "timeout 300 atftp --option 'blksize 1468' --option 'windowsize 4' -g -r one -l " +
      out + "/atftp$i 127.0.0.1 " + port +
      " & pids=\"$pids $!\"; done; fail=0; for p in $pids; do wait $p || fail=1; done; "
      "exit $fail";
  auto r = RunCommand("bash -c " + Quote(script) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (int i = 1; i <= 48; ++i)
    ASSERT_TRUE(
        Same((out_dir / fmt::format("curl{}", i)).string(), Orig("boot/x86_64/loader/initrd")))
        << i;
  for (int i = 1; i <= 8; ++i) {
    ASSERT_TRUE(Same((out_dir / fmt::format("hpa{}", i)).string(), Orig("one"))) << i;
    ASSERT_TRUE(Same((out_dir / fmt::format("atftp{}", i)).string(), Orig("one"))) << i;
  }
  auto s = server_->stats();
  EXPECT_EQ(s.requests, 64u);
  EXPECT_EQ(s.completed, 64u);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_EQ(s.active, 0u);
  auto recs = Records();
  EXPECT_EQ(recs.size(), 64u);
  for (const auto& rec : recs)
    EXPECT_EQ(rec.outcome, Outcome::kComplete) << rec.filename << " " << rec.detail;
  StopServer();  // no hook runs after this: hook_threads may go
  // 64 requests from random ports all hashed to one of 4 loops: about 4^-63.
  EXPECT_GT(hook_threads.size(), 1u);
}

TEST_F(TftpServerTest, NewTreeServesNewRequests) {
  StartServer();
  auto r = RunCommand("curl -sS --max-time 30 " + url_ + "pxelinux.cfg/default");
  EXPECT_EQ(r.out, "default linux\nlabel linux\n  kernel linux\n");
  auto rebuilt = std::make_shared<vfs::Tree>();
  rebuilt->Add("pxelinux.cfg/default", vfs::TextSource("rebuilt\n"));
  {
    std::lock_guard lock(mu_);
    tree_override_ = rebuilt;
  }
  r = RunCommand("curl -sS --max-time 30 " + url_ + "pxelinux.cfg/default");
  EXPECT_EQ(r.out, "rebuilt\n");
}

}  // namespace
}  // namespace isoboot::tftp
