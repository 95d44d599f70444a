#include "iso/boot_menu.h"

#include <string>

#include <gtest/gtest.h>

namespace isoboot::iso {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

RewrittenMenu Rewrite(MenuKind kind, const std::string& text, const std::string& args,
                      const std::string& initrd = "/isoboot/node.img") {
  auto r = RewriteMenu(kind, Bytes(text), MenuChange{args, initrd});
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  return r ? *r : RewrittenMenu{};
}

TEST(MenuKindOf, ByFileName) {
  EXPECT_EQ(MenuKindOf("/isolinux/isolinux.cfg"), MenuKind::kSyslinux);
  EXPECT_EQ(MenuKindOf("/boot/x86_64/loader/ISOLINUX.CFG"), MenuKind::kSyslinux);
  EXPECT_EQ(MenuKindOf("/syslinux.cfg"), MenuKind::kSyslinux);
  EXPECT_EQ(MenuKindOf("/boot/grub2/grub.cfg"), MenuKind::kGrub);
  EXPECT_EQ(MenuKindOf("/EFI/BOOT/grub.cfg"), MenuKind::kGrub);
  EXPECT_EQ(MenuKindOf("/boot/grub2/loopback.cfg"), std::nullopt);
  EXPECT_EQ(MenuKindOf("/isolinux/isolinux.bin"), std::nullopt);
}

TEST(Syslinux, AppendAndInitrdInAppend) {
  // The KIWI test image's menu.
  const std::string in =
      "serial 0 115200\n"
      "default live\n"
      "prompt 0\n"
      "label live\n"
      "  kernel /boot/x86_64/loader/linux\n"
      "  append initrd=/boot/x86_64/loader/initrd root=live:CDLABEL=X console=ttyS0\n";
  RewrittenMenu out = Rewrite(MenuKind::kSyslinux, in, "hostname=n1 ip=dhcp");
  EXPECT_EQ(out.entries, 1u);
  EXPECT_EQ(out.text,
            "serial 0 115200\n"
            "default live\n"
            "prompt 0\n"
            "label live\n"
            "  kernel /boot/x86_64/loader/linux\n"
            "  append initrd=/boot/x86_64/loader/initrd,/isoboot/node.img root=live:CDLABEL=X "
            "console=ttyS0 hostname=n1 ip=dhcp\n");
}

TEST(Syslinux, InitrdLineModulesAndGlobalAppend) {
  const std::string in =
      "DEFAULT menu.c32\r\n"
      "APPEND quiet\r\n"
      "LABEL linux\r\n"
      "  MENU LABEL Live\r\n"
      "  LINUX /boot/vmlinuz\r\n"
      "  INITRD /boot/initrd.img\r\n"
      "  APPEND root=live:LABEL=L\r\n"
      "LABEL inherits\r\n"
      "  KERNEL /boot/vmlinuz\r\n"
      "LABEL hd\r\n"
      "  KERNEL chain.c32\r\n"
      "  APPEND hd0\r\n"
      "TEXT HELP\r\n"
      "  append this is help text\r\n"
      "ENDTEXT\r\n";
  RewrittenMenu out = Rewrite(MenuKind::kSyslinux, in, "a=1");
  EXPECT_EQ(out.entries, 2u);
  EXPECT_EQ(out.text,
            "DEFAULT menu.c32\r\n"
            "APPEND quiet\r\n"
            "LABEL linux\r\n"
            "  MENU LABEL Live\r\n"
            "  LINUX /boot/vmlinuz\r\n"
            "  INITRD /boot/initrd.img,/isoboot/node.img\r\n"
            "  APPEND root=live:LABEL=L a=1\r\n"
            "LABEL inherits\r\n"
            "  KERNEL /boot/vmlinuz\r\n"
            "  append quiet initrd=/isoboot/node.img a=1\r\n"
            "LABEL hd\r\n"
            "  KERNEL chain.c32\r\n"
            "  APPEND hd0\r\n"
            "TEXT HELP\r\n"
            "  append this is help text\r\n"
            "ENDTEXT\r\n");
}

TEST(Syslinux, EmptyAppendAndNoLineEnd) {
  RewrittenMenu out =
      Rewrite(MenuKind::kSyslinux, "label a\nkernel /k\nappend -\nlabel b\nkernel /k", "x=1", "");
  EXPECT_EQ(out.entries, 2u);
  EXPECT_EQ(out.text, "label a\nkernel /k\nappend x=1\nlabel b\nkernel /k\nappend x=1\n");
}

TEST(Grub, LinuxAndInitrdLines) {
  const std::string in =
      "set default=0\n"
      "menuentry \"live\" {\n"
      "  linux ($root)/boot/x86_64/loader/linux root=live:CDLABEL=X console=ttyS0 # serial\n"
      "  initrd ($root)/boot/x86_64/loader/initrd\n"
      "}\n"
      "menuentry \"no initrd\" --class os {\n"
      "\tlinuxefi /vmlinuz quiet; echo booting\n"
      "}\n"
      "menuentry \"firmware\" { fwsetup; }\n";
  RewrittenMenu out = Rewrite(MenuKind::kGrub, in, "hostname=n1 k=$x");
  EXPECT_EQ(out.entries, 2u);
  EXPECT_EQ(out.text,
            "set default=0\n"
            "menuentry \"live\" {\n"
            "  linux ($root)/boot/x86_64/loader/linux root=live:CDLABEL=X console=ttyS0 "
            "hostname=n1 'k=$x' # serial\n"
            "  initrd ($root)/boot/x86_64/loader/initrd ($root)/isoboot/node.img\n"
            "}\n"
            "menuentry \"no initrd\" --class os {\n"
            "\tlinuxefi /vmlinuz quiet hostname=n1 'k=$x' ; echo booting\n"
            "\tinitrd /isoboot/node.img\n"
            "}\n"
            "menuentry \"firmware\" { fwsetup; }\n");
}

TEST(Grub, NoLinuxEntryIsUnchanged) {
  const std::string in = "search --label X --set root\nconfigfile ($root)/boot/grub2/grub.cfg\n";
  RewrittenMenu out = Rewrite(MenuKind::kGrub, in, "a=1");
  EXPECT_EQ(out.entries, 0u);
  EXPECT_EQ(out.text, in);
}

TEST(RewriteMenu, RefusesWhatItCannotCarry) {
  const MenuChange change{"a=1", ""};
  std::string binary("label a\nkernel /k\0\x01", 20);
  auto r = RewriteMenu(MenuKind::kSyslinux, Bytes(binary), change);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("not a text file"), std::string::npos) << r.error().message;

  std::string big(kMaxMenuBytes + 1, 'a');
  EXPECT_FALSE(RewriteMenu(MenuKind::kGrub, Bytes(big), change).has_value());

  auto open_quote = RewriteMenu(MenuKind::kGrub, Bytes("linux /k 'a\n"), change);
  ASSERT_FALSE(open_quote.has_value());
  EXPECT_NE(open_quote.error().message.find("line 1"), std::string::npos);

  for (std::string bad : {"a=\"b c\"", "a='b'", "a=\\n", "a=\x01", "a=\xc3\xa9"}) {
    auto r2 = RewriteMenu(MenuKind::kGrub, Bytes("linux /k\n"), MenuChange{bad, ""});
    EXPECT_FALSE(r2.has_value()) << bad;
    EXPECT_FALSE(CheckKernelArgs(bad).has_value()) << bad;
  }
  EXPECT_TRUE(CheckKernelArgs("ip=10.0.0.2::10.0.0.1:255.255.255.0:n1:eth0:none a=$b").has_value());
}

}  // namespace
}  // namespace isoboot::iso
