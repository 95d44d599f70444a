#include "initrd/transports.h"

#include <gtest/gtest.h>

namespace isoboot::initrd {
namespace {

using Contents = std::map<std::string, std::string>;

const char kKiwi924Parser[] =
    "case \"${liveroot}\" in\n"
    "    live:CDLABEL=*|CDLABEL=*) rootok=1 ;;\n"
    "    live:AOEINTERFACE=*|AOEINTERFACE=*) modprobe -q aoe; rootok=1 ;;\n"
    "esac\n";

TEST(TransportsTest, Kiwi924HasAoeButNoHttp) {
  std::vector<std::string> paths = {
      "usr/lib/dracut/hooks/cmdline/30-parse-kiwi-live.sh", "usr/lib/kiwi-live-lib.sh",
      "usr/lib/modules/6.1.0-50-amd64/kernel/drivers/block/aoe/aoe.ko",
      "usr/lib/dracut/dracut-059-4"};
  for (const auto& p : paths)
    EXPECT_EQ(WantsContents(p), p.find("kiwi-live") != std::string::npos) << p;
  auto s = DetectRootSupport(
      paths, Contents{{"usr/lib/dracut/hooks/cmdline/30-parse-kiwi-live.sh", kKiwi924Parser}});
  EXPECT_EQ(s.name, "kiwi-live, dracut 059-4");
  EXPECT_EQ(s.Available(), std::vector<Transport>{Transport::kAoe});
  EXPECT_EQ(s.Summary(), "aoe (kiwi-live + aoe.ko)");
  EXPECT_EQ(s.Missing(Transport::kHttp), "kiwi-live's parser has no http root, no curl");
  EXPECT_EQ(s.Missing(Transport::kNbd), "no dracut nbd module and no nbd-client");
}

TEST(TransportsTest, KiwiWithoutTheAoeModuleOrWithHttp) {
  auto s = DetectRootSupport({"lib/kiwi-live-lib.sh"},
                             Contents{{"lib/kiwi-live-lib.sh", "AOEINTERFACE"}});
  EXPECT_FALSE(s.Best(Transport::kAoe));
  EXPECT_EQ(s.Missing(Transport::kAoe), "no aoe kernel module");
  // Built in instead of a module file.
  s = DetectRootSupport(
      {"lib/kiwi-live-lib.sh", "lib/modules/6.1.0/modules.builtin"},
      Contents{{"lib/kiwi-live-lib.sh", "AOEINTERFACE"},
               {"lib/modules/6.1.0/modules.builtin", "kernel/drivers/block/aoe/aoe.ko\n"}});
  EXPECT_TRUE(s.Best(Transport::kAoe));
  // Newer KIWI: root=live:http(s)/ftp fetched with curl.
  s = DetectRootSupport({"usr/lib/dracut/hooks/cmdline/30-parse-kiwi-live.sh", "usr/bin/curl"},
                        Contents{{"usr/lib/dracut/hooks/cmdline/30-parse-kiwi-live.sh",
                                  "live:http*|live:https*|live:ftp*) rootok=1 ;;"}});
  ASSERT_TRUE(s.Best(Transport::kHttp));
  EXPECT_EQ(s.Best(Transport::kHttp)->form, RootForm::kKiwi);
  EXPECT_FALSE(s.Best(Transport::kAoe));
}

TEST(TransportsTest, DracutLivenetNbdLiveBootCasper) {
  auto s = DetectRootSupport(
      {"usr/lib/dracut/hooks/cmdline/29-parse-livenet.sh", "usr/sbin/livenetroot",
       "usr/sbin/dmsquash-live-root", "usr/lib/dracut/hooks/cmdline/30-parse-dmsquash-live.sh"},
      {});
  EXPECT_FALSE(s.Best(Transport::kHttp));
  EXPECT_EQ(s.Missing(Transport::kHttp), "no curl");
  EXPECT_EQ(s.name, "dracut dmsquash-live + livenet");
  s = DetectRootSupport({"usr/sbin/livenetroot", "usr/sbin/dmsquash-live-root", "usr/bin/curl"},
                        {});
  ASSERT_TRUE(s.Best(Transport::kHttp));
  EXPECT_EQ(s.Best(Transport::kHttp)->form, RootForm::kDracutLive);

  s = DetectRootSupport({"usr/lib/dracut/hooks/cmdline/90-parse-nbdroot.sh", "usr/sbin/nbdroot",
                         "usr/sbin/nbd-client"},
                        {});
  EXPECT_EQ(s.Missing(Transport::kNbd), "no nbd kernel module, no dracut dmsquash-live module");
  s = DetectRootSupport({"usr/sbin/nbdroot", "usr/sbin/nbd-client",
                         "lib/modules/6.1.0/kernel/drivers/block/nbd.ko.xz"},
                        {});
  EXPECT_FALSE(s.Best(Transport::kNbd));  // the export is an ISO: dmsquash-live mounts it
  EXPECT_EQ(s.Missing(Transport::kNbd), "no dracut dmsquash-live module");
  s = DetectRootSupport({"usr/sbin/nbdroot", "usr/sbin/nbd-client", "usr/sbin/dmsquash-live-root",
                         "lib/modules/6.1.0/kernel/drivers/block/nbd.ko.xz"},
                        {});
  ASSERT_TRUE(s.Best(Transport::kNbd));
  EXPECT_EQ(s.Best(Transport::kNbd)->form, RootForm::kDracutLive);

  s = DetectRootSupport({"scripts/live", "lib/live/boot/9990-cmdline-old", "bin/busybox",
                         "lib/live/boot/9990-misc-helpers.sh"},
                        Contents{{"lib/live/boot/9990-misc-helpers.sh", "fetch=*) FETCH=..."}});
  EXPECT_EQ(s.name, "live-boot");
  ASSERT_TRUE(s.Best(Transport::kHttp));
  EXPECT_EQ(s.Best(Transport::kHttp)->form, RootForm::kLiveBoot);
  // As in Debian 12's live-boot initrd (merged /usr; the parser has no .sh).
  s = DetectRootSupport({"scripts/live", "usr/lib/live/boot/9990-cmdline-old", "usr/bin/busybox"},
                        Contents{{"usr/lib/live/boot/9990-cmdline-old",
                                  "\t\t\tfetch=*)\n\t\t\t\tFETCH=\"${_PARAMETER#fetch=}\""}});
  ASSERT_TRUE(s.Best(Transport::kHttp)) << s.Missing(Transport::kHttp);
  EXPECT_EQ(s.Best(Transport::kHttp)->form, RootForm::kLiveBoot);
  s = DetectRootSupport({"scripts/live"}, {});
  EXPECT_EQ(s.Missing(Transport::kHttp), "live-boot without fetch=, no wget, busybox or curl");

  s = DetectRootSupport({"scripts/casper", "bin/wget"}, Contents{{"scripts/casper", "url=*)"}});
  ASSERT_TRUE(s.Best(Transport::kHttp));
  EXPECT_EQ(s.Best(Transport::kHttp)->form, RootForm::kCasper);

  s = DetectRootSupport({"init", "bin/sh"}, {});
  EXPECT_EQ(s.name, "of a kind isoboot does not know");
  EXPECT_EQ(s.Summary(), "none");
  EXPECT_EQ(s.Missing(Transport::kAoe), "nothing in it handles an aoe root");
}

}  // namespace
}  // namespace isoboot::initrd
