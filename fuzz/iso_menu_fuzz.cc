// Fuzzes the boot-menu rewriter (iso/boot_menu.h): the first byte picks the
// menu language and whether arguments and an initrd are added, the rest is
// the menu. A menu without a Linux entry must come back byte for byte, and
// a rewritten one must rewrite again without error.

#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "iso/boot_menu.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using isoboot::iso::MenuKind;
  const MenuKind kind = (data[0] & 1) ? MenuKind::kGrub : MenuKind::kSyslinux;
  isoboot::iso::MenuChange change;
  change.kernel_args = (data[0] & 2) ? "hostname=n1 k=$v" : "";
  change.extra_initrd = (data[0] & 4) ? "/isoboot/node.img" : "";
  std::span<const uint8_t> text(data + 1, size - 1);
  auto out = isoboot::iso::RewriteMenu(kind, text, change);
  if (!out) return 0;
  if (out->entries == 0 &&
      out->text != std::string(reinterpret_cast<const char*>(text.data()), text.size())) {
    abort();
  }
  std::span<const uint8_t> again(reinterpret_cast<const uint8_t*>(out->text.data()),
                                 out->text.size());
  if (out->text.size() <= isoboot::iso::kMaxMenuBytes &&
      !isoboot::iso::RewriteMenu(kind, again, change)) {
    abort();
  }
  return 0;
}
