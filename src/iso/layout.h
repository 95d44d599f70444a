#pragma once
// Live ISO layout detection from the file tree alone: which kind of live
// image this is, its architecture, and where the kernel, initrd and root
// filesystem image are. Pure: works on a list of paths.

#include <string>
#include <string_view>
#include <vector>

namespace isoboot::iso {

struct Tree;

enum class LayoutKind {
  kUnknown,
  kKiwi,         // boot/<arch>/loader/{linux,initrd}, LiveOS/ squashfs container
  kDracutLive,   // dmsquash-live: LiveOS/squashfs.img, isolinux/ or images/pxeboot/
  kDebianLive,   // live-boot: live/vmlinuz*, live/initrd*, live/filesystem.squashfs
  kUbuntuCasper  // casper/vmlinuz, casper/initrd
};
std::string_view ToString(LayoutKind kind);

struct Layout {
  LayoutKind kind = LayoutKind::kUnknown;
  std::string arch;    // "x86_64", "aarch64", or empty when unknown
  std::string kernel;  // absolute paths inside the image
  std::string initrd;
  std::string root_image;  // the squashfs (or container) holding the root, if found
  // For an unknown layout: every file that looks like a kernel.
  std::vector<std::string> candidate_kernels;
};

// `paths`: absolute paths ("/boot/x86_64/loader/linux") of every regular
// file and symlink in the image.
Layout DetectLayout(const std::vector<std::string>& paths);

// Convenience: collects the paths of `tree` and calls DetectLayout.
Layout DetectLayout(const Tree& tree);

}  // namespace isoboot::iso
