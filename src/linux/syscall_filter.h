#pragma once
// (Named syscall_filter.h, not seccomp.h, so it never shadows <linux/seccomp.h>,
// which libseccomp's <seccomp.h> includes.)
// A seccomp filter for a daemon that is done setting up: once `isoboot
// serve` has bound its sockets and dropped root (privilege.h), the system
// calls it never needs fail, so a bug in a parser of untrusted input (Beast,
// libisofs, libarchive, zstd) cannot use them.
//
// A denylist, not an allowlist: Asio, Beast, libarchive, spdlog and glibc
// change the calls they make between versions, and a missing entry in an
// allowlist is a dead boot server. The denied calls are the ones that reach
// other processes, the kernel's configuration or new privileges: exec,
// ptrace and process memory, mounts and roots, modules, kexec, reboot, swap,
// bpf, perf, userfaultfd, io_uring, keyrings, namespaces (unshare, setns,
// clone with a CLONE_NEW* flag), credential changes (set*id, setgroups,
// capset), file handles, port I/O, accounting, the clock, host names, the
// kernel log, quotas, personality changes and terminal input injection
// (TIOCSTI, TIOCLINUX). SeccompDeniedSyscalls() lists them.
//
// Action: EPERM, not a kill. Without capabilities the kernel refuses most of
// these anyway; the filter also keeps the kernel code behind them (bpf,
// userfaultfd, keyrings, namespaces: the usual exploit paths) unreachable,
// and EPERM does that as well as a kill while a mistake shows as a logged
// error instead of a boot server dying mid-boot. clone3 fails with ENOSYS
// (its flags are behind a pointer the filter cannot read), so glibc falls
// back to clone, whose flags it can. A call of another ABI (x32, or i386 via
// int 0x80) kills the process: the list is in x86-64 numbers, another ABI's
// numbers would walk past it, and isoboot never makes such calls.
//
// Under LeakSanitizer (ASan builds) ptrace stays allowed: its check at exit
// attaches to the process's threads with ptrace and fails without it.
//
// Threading: call once, from any thread, after DropPrivileges. The filter
// covers every thread already running (SECCOMP_FILTER_FLAG_TSYNC, which also
// sets no_new_privs on them) and every thread or child started later; it
// cannot be removed.

#include <span>
#include <string_view>

#include "base/result.h"

namespace isoboot::sys {

// Errors: kIo with the failed libseccomp call; e.g. a thread that already
// has a different filter makes the thread sync fail.
Result<void> InstallSeccompFilter();

// The system calls the filter refuses outright or in part (names as in
// syscalls(2)), for the log and the tests.
std::span<const std::string_view> SeccompDeniedSyscalls();

// False in builds with LeakSanitizer (see above).
bool SeccompDeniesPtrace();

}  // namespace isoboot::sys
