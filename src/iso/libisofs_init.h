#pragma once
// Internal to src/iso: libisofs's process-wide setup (messages off, names in
// UTF-8), done once before any libisofs call, and owners for its objects.
// Include this instead of <libisofs/libisofs.h>: it asks libisofs for its
// copy of struct burn_source (libburn's, which we do not use), through
// which the writers read the images libisofs makes. Thread safe.

#ifndef LIBISOFS_WITHOUT_LIBBURN
#define LIBISOFS_WITHOUT_LIBBURN
#endif
#include <stdlib.h>

#include <cstdint>
#include <memory>

#include <libisofs/libisofs.h>

namespace isoboot::iso {

void InitLibisofsOnce();

struct ImageDeleter {
  void operator()(IsoImage* i) const { iso_image_unref(i); }
};
struct ReadOptsDeleter {
  void operator()(IsoReadOpts* o) const { iso_read_opts_free(o); }
};
struct WriteOptsDeleter {
  void operator()(IsoWriteOpts* o) const { iso_write_opts_free(o); }
};
struct FeaturesDeleter {
  void operator()(IsoReadImageFeatures* f) const { iso_read_image_features_destroy(f); }
};
struct DirIterDeleter {
  void operator()(IsoDirIter* i) const { iso_dir_iter_free(i); }
};
struct BurnSourceDeleter {
  void operator()(struct burn_source* b) const {
    if (b->free_data) b->free_data(b);
    free(b);
  }
};
using ImagePtr = std::unique_ptr<IsoImage, ImageDeleter>;
using ReadOptsPtr = std::unique_ptr<IsoReadOpts, ReadOptsDeleter>;
using WriteOptsPtr = std::unique_ptr<IsoWriteOpts, WriteOptsDeleter>;
using FeaturesPtr = std::unique_ptr<IsoReadImageFeatures, FeaturesDeleter>;
using DirIterPtr = std::unique_ptr<IsoDirIter, DirIterDeleter>;
using BurnSourcePtr = std::unique_ptr<struct burn_source, BurnSourceDeleter>;

// A data source whose blocks `read` gives, with `data` as its state (not
// owned); opening, closing and freeing it do nothing else. Reference count
// 1: libisofs frees it with free() when iso_data_source_unref drops the last.
// Throws std::bad_alloc.
IsoDataSource* NewDataSource(int (*read)(IsoDataSource*, uint32_t lba, uint8_t* block), void* data);

}  // namespace isoboot::iso
