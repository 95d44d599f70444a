#pragma once
// Owning pointers to libarchive handles, private to overlay/ (libarchive is
// linked PRIVATE here: do not include this header outside src/overlay/).
// A handle is used by one thread at a time.

#include <memory>

#include <archive.h>
#include <archive_entry.h>

namespace isoboot::overlay {

// The deleter differs by handle kind (archive_read_free, archive_write_free),
// so it is given at construction: ArchivePtr a(archive_read_new(), archive_read_free).
using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;
using EntryPtr = std::unique_ptr<struct archive_entry, void (*)(struct archive_entry*)>;

}  // namespace isoboot::overlay
