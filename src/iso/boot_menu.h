#pragma once
// The boot menus on a live ISO that firmware entries read, and how a node
// image changes them: isolinux/syslinux configs (the BIOS El Torito entry)
// and GRUB's grub.cfg (the UEFI entry's ESP chains to it on KIWI images).
// Each entry that boots a Linux kernel gets the node's kernel arguments
// after its own and loads one more initramfs after its own (`initrd=a,b`,
// `INITRD a,b`, `initrd a b`): the kernel unpacks them in order. Everything
// else of the file is kept byte for byte, line endings included.
//
// Pure and fuzzable (fuzz/iso_menu_fuzz.cc): text in, text out. Thread safe.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace isoboot::iso {

enum class MenuKind {
  kSyslinux,  // isolinux.cfg, syslinux.cfg
  kGrub       // grub.cfg
};
std::string_view ToString(MenuKind kind);

// Whether an image path is a boot menu a firmware entry reads, by its file
// name: isolinux.cfg and syslinux.cfg anywhere, grub.cfg anywhere.
std::optional<MenuKind> MenuKindOf(std::string_view path);

struct MenuChange {
  std::string kernel_args;   // appended to each Linux entry; may be empty
  std::string extra_initrd;  // image path ("/isoboot/node.img"); empty: none
};

// Kernel arguments a menu can carry: printable ASCII words, no quotes or
// backslashes (neither menu language could pass them on unchanged).
Result<void> CheckKernelArgs(std::string_view args);

struct RewrittenMenu {
  std::string text;
  unsigned entries = 0;  // Linux entries changed
};

// Rewrites one menu. Fails (one line) when the bytes are not text (a NUL or
// another control byte), larger than kMaxMenuBytes, or a GRUB line's quotes
// do not close. A menu with no Linux entry is returned unchanged, entries 0.
inline constexpr size_t kMaxMenuBytes = 1 << 20;
Result<RewrittenMenu> RewriteMenu(MenuKind kind, std::span<const uint8_t> text,
                                  const MenuChange& change);

}  // namespace isoboot::iso
