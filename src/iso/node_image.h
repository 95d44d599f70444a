#pragma once
// One node's own live image, grown from the base image (iso/grow.h) without
// copying it: its boot menus carry the node's kernel arguments and load a
// second initramfs (the overlay-restore hook, what --initrd-add gives) after
// the image's own, and a host directory of the node's files is added.
//
// Thread safety: MakeNodeImage may run on several threads at once.

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "iso/grow.h"

namespace isoboot::iso {

class Image;

// Where the second initramfs goes in a node image.
inline constexpr char kNodeInitrdPath[] = "/isoboot/node.img";
// Where --node-files puts a node's directory by default.
inline constexpr char kNodeFilesPath[] = "/pitdata";

struct NodeImageSpec {
  std::string kernel_args;
  // Host files (initramfs archives) concatenated, in order, into the
  // second initramfs; none: the menus load no second one.
  std::vector<std::string> extra_initrds;
  std::string files_dir;                    // host directory; empty: none
  std::string files_path = kNodeFilesPath;  // where in the image it goes
};

struct NodeImage {
  GrownImage grown;
  std::vector<std::string> menus;     // image paths of the menus changed
  unsigned entries = 0;               // Linux entries changed in them
  std::vector<std::string> warnings;  // menus left as they were, and why
};

// Fails (one line) when the spec cannot be applied: kernel arguments or a
// second initramfs with no boot menu holding a Linux entry (or none that is
// text), an unreadable host file, a files_dir holding what an image cannot
// carry (see ReadHostTree), growing failing.
Result<NodeImage> MakeNodeImage(const Image& base, const NodeImageSpec& spec);

// The regular files, directories and symlinks below host directory `dir`,
// as entries under image path `at`. Refused (one line naming the path): a
// symlink whose target is absolute or leaves `dir`, a device, FIFO or
// socket, an unreadable entry, more than 100000 entries, 64 levels or
// 1 GiB of file bytes. Symlinks are not followed.
Result<std::vector<AddedEntry>> ReadHostTree(const std::string& dir, std::string_view at);

}  // namespace isoboot::iso
