#pragma once
// Internal to iso/: libisofs's one-time set-up, shared by the reader
// (image.cc) and the writers. Thread-safe (std::call_once); throws
// std::runtime_error when libisofs cannot be initialised.

#include <mutex>
#include <stdexcept>

// Writers read the image out of libisofs's copy of libburn's struct
// burn_source; we do not use libburn. Include this header before
// <libisofs/libisofs.h> where that struct is needed.
#ifndef LIBISOFS_WITHOUT_LIBBURN
#define LIBISOFS_WITHOUT_LIBBURN 1
#endif
#include <libisofs/libisofs.h>

namespace isoboot::iso {

inline void InitLibisofsOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (iso_init() < 0) throw std::runtime_error("cannot initialise libisofs");
    // libisofs prints its own messages to stderr by default; we turn its
    // errors into our one-line errors instead.
    static char never[] = "NEVER";
    static char id[] = "isoboot";
    iso_set_msgs_severities(never, never, id);
    // Names are handed out as UTF-8 whatever the process locale is (CI runs
    // under the C locale, which would mangle Joliet and non-ASCII names).
    iso_set_local_charset(const_cast<char*>("UTF-8"), 0);
  });
}

}  // namespace isoboot::iso
