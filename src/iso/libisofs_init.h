#pragma once
// Internal to src/iso: libisofs's process-wide setup (messages off, names in
// UTF-8), done once before any libisofs call. Thread safe.

namespace isoboot::iso {

void InitLibisofsOnce();

}  // namespace isoboot::iso
