#include "iso/layout.h"

#include <gtest/gtest.h>

#include "iso/image.h"
#include "tests/iso/test_util.h"

namespace isoboot::iso {
namespace {

TEST(LayoutTest, DetectsFromPathsAlone) {
  Layout kiwi = DetectLayout(std::vector<std::string>{
      "/boot/aarch64/loader/linux", "/boot/aarch64/loader/initrd", "/LiveOS/squashfs.img"});
  EXPECT_EQ(kiwi.kind, LayoutKind::kKiwi);
  EXPECT_EQ(kiwi.arch, "aarch64");
  EXPECT_EQ(kiwi.kernel, "/boot/aarch64/loader/linux");

  Layout fedora =
      DetectLayout(std::vector<std::string>{"/images/pxeboot/vmlinuz", "/images/pxeboot/initrd.img",
                                            "/LiveOS/squashfs.img", "/EFI/BOOT/BOOTX64.EFI"});
  EXPECT_EQ(fedora.kind, LayoutKind::kDracutLive);
  EXPECT_EQ(fedora.arch, "x86_64");
  EXPECT_EQ(fedora.initrd, "/images/pxeboot/initrd.img");

  Layout none = DetectLayout(std::vector<std::string>{"/x/vmlinuz-6.1", "/readme"});
  EXPECT_EQ(none.kind, LayoutKind::kUnknown);
  EXPECT_EQ(none.candidate_kernels, std::vector<std::string>{"/x/vmlinuz-6.1"});
}

struct LayoutCase {
  const char* name;
  LayoutKind kind;
  const char* arch;
  const char* kernel;
  const char* initrd;
  const char* root;
};

class LayoutIsoTest : public ::testing::TestWithParam<LayoutCase> {};

// Each layout as a real ISO made by xorriso (scripts/make-layout-iso.sh).
TEST_P(LayoutIsoTest, DetectsLayoutOfIso) {
  const LayoutCase& c = GetParam();
  test::ScratchDir dir(std::string("layout-") + c.name);
  std::string iso = (dir / "x.iso").string();
  std::string script =
      std::string(std::getenv("ISOBOOT_SOURCE_DIR")) + "/scripts/make-layout-iso.sh";
  auto made = test::RunCommand(script + " " + c.name + " " + iso + " 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.out;
  auto image = Image::Open(iso);
  ASSERT_TRUE(image) << image.error().message;
  Layout layout = DetectLayout((*image)->tree());
  EXPECT_EQ(layout.kind, c.kind);
  EXPECT_EQ(layout.arch, c.arch);
  EXPECT_EQ(layout.kernel, c.kernel);
  EXPECT_EQ(layout.initrd, c.initrd);
  EXPECT_EQ(layout.root_image, c.root);

  // The CLI says the same, and says plainly when it does not know.
  auto info = test::RunCommand(test::IsobootBin() + " iso info " + iso);
  ASSERT_EQ(info.exit_code, 0);
  if (c.kind == LayoutKind::kUnknown) {
    EXPECT_NE(info.out.find("layout     unknown"), std::string::npos) << info.out;
    EXPECT_NE(info.out.find("/kernels/vmlinuz-custom"), std::string::npos) << info.out;
    EXPECT_NE(info.out.find("/other/bzImage"), std::string::npos) << info.out;
  } else {
    EXPECT_NE(info.out.find(std::string("kernel     ") + c.kernel), std::string::npos) << info.out;
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllLayouts, LayoutIsoTest,
    ::testing::Values(LayoutCase{"kiwi", LayoutKind::kKiwi, "x86_64", "/boot/x86_64/loader/linux",
                                 "/boot/x86_64/loader/initrd", "/LiveOS/squashfs.img"},
                      LayoutCase{"dracut", LayoutKind::kDracutLive, "x86_64",
                                 "/images/pxeboot/vmlinuz", "/images/pxeboot/initrd.img",
                                 "/LiveOS/squashfs.img"},
                      LayoutCase{"debian-live", LayoutKind::kDebianLive, "x86_64",
                                 "/live/vmlinuz-6.1.0-13-amd64", "/live/initrd.img-6.1.0-13-amd64",
                                 "/live/filesystem.squashfs"},
                      LayoutCase{"casper", LayoutKind::kUbuntuCasper, "aarch64", "/casper/vmlinuz",
                                 "/casper/initrd", "/casper/filesystem.squashfs"},
                      LayoutCase{"unknown", LayoutKind::kUnknown, "", "", "", ""}),
    [](const auto& info) {
      std::string n = info.param.name;
      for (auto& ch : n) {
        if (ch == '-') ch = '_';
      }
      return n;
    });

}  // namespace
}  // namespace isoboot::iso
