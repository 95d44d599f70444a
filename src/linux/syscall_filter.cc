#include "linux/syscall_filter.h"

#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

// Defined by LeakSanitizer (alone or inside ASan); null otherwise.
extern "C" void __lsan_do_leak_check() __attribute__((weak));

namespace isoboot::sys {
namespace {

// Refused whatever the arguments, with EPERM.
constexpr std::string_view kDenied[] = {
    // Running other code, reading or writing other processes.
    "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    // Mounts and roots.
    "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "mount_setattr",
    // The kernel's own configuration.
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "acct", "syslog", "quotactl", "quotactl_fd", "iopl", "ioperm",
    "sethostname", "setdomainname", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    // Kernel attack surface a server has no use for.
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "keyctl", "add_key", "request_key", "open_by_handle_at",
    // New credentials or namespaces (DropPrivileges has run).
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid",
    "setgroups", "capset", "unshare", "setns",
    // clone3, clone, personality, ioctl: in part, below.
};

// What SCMP_A0/SCMP_A1 build, with every field named (clang warns on the
// macros' missing datum_b).
scmp_arg_cmp Arg(unsigned arg, scmp_compare op, uint64_t a, uint64_t b = 0) {
  return scmp_arg_cmp{.arg = arg, .op = op, .datum_a = a, .datum_b = b};
}

constexpr std::string_view kPartlyDenied[] = {"clone3", "clone", "personality", "ioctl"};

// clone flags that make a namespace (CLONE_NEWTIME exists only for clone3
// and unshare, both refused).
constexpr uint64_t kNamespaceFlags[] = {CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                                        CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET};

using Filter = std::unique_ptr<void, decltype(&seccomp_release)>;

Result<void> Check(int rc, std::string_view what) {
  if (rc < 0) return OsError(-rc, fmt::format("seccomp: {}", what));
  return {};
}

Result<void> AddRules(scmp_filter_ctx ctx) {
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  for (std::string_view name : kDenied) {
    if (name == "ptrace" && !SeccompDeniesPtrace()) continue;
    int nr = seccomp_syscall_resolve_name(std::string(name).c_str());
    if (nr == __NR_SCMP_ERROR) continue;  // unknown to this libseccomp: an old call
    if (auto r = Check(seccomp_rule_add(ctx, eperm, nr, 0), fmt::format("denying {}", name)); !r)
      return r;
  }
  if (auto r = Check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "clone3");
      !r)
    return r;
  for (uint64_t flag : kNamespaceFlags) {
    auto r = Check(
        seccomp_rule_add(ctx, eperm, SCMP_SYS(clone), 1, Arg(0, SCMP_CMP_MASKED_EQ, flag, flag)),
        fmt::format("clone flag {:#x}", flag));
    if (!r) return r;
  }
  // personality(0xffffffff) only reads the persona.
  if (auto r = Check(
          seccomp_rule_add(ctx, eperm, SCMP_SYS(personality), 1, Arg(0, SCMP_CMP_NE, 0xffffffffu)),
          "personality");
      !r)
    return r;
  // The request is an int: compare its low 32 bits only.
  for (uint64_t request : {TIOCSTI, TIOCLINUX}) {
    auto r = Check(seccomp_rule_add(ctx, eperm, SCMP_SYS(ioctl), 1,
                                    Arg(1, SCMP_CMP_MASKED_EQ, 0xffffffffu, request)),
                   fmt::format("ioctl {:#x}", request));
    if (!r) return r;
  }
  return {};
}

}  // namespace

bool SeccompDeniesPtrace() {
  return __lsan_do_leak_check == nullptr;
}

std::span<const std::string_view> SeccompDeniedSyscalls() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v;
    for (std::string_view n : kDenied) {
      if (n != "ptrace" || SeccompDeniesPtrace()) v.push_back(n);
    }
    v.insert(v.end(), std::begin(kPartlyDenied), std::end(kPartlyDenied));
    return v;
  }();
  return names;
}

Result<void> InstallSeccompFilter() {
  Filter filter(seccomp_init(SCMP_ACT_ALLOW), seccomp_release);
  if (!filter) return MakeError(ErrorKind::kIo, "seccomp: seccomp_init failed");
  scmp_filter_ctx ctx = filter.get();
  if (auto r = Check(seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS),
                     "killing calls of other ABIs");
      !r)
    return r;
  if (auto r = Check(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1), "thread sync"); !r) return r;
  // no_new_privs (libseccomp's default) lets an unprivileged process load it.
  if (auto r = Check(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1), "no_new_privs"); !r) return r;
  if (auto r = AddRules(ctx); !r) return r;
  int rc = seccomp_load(ctx);
  if (rc > 0) {
    // With TSYNC, a positive result is a thread that could not be synced.
    return MakeError(ErrorKind::kIo,
                     fmt::format("seccomp: thread {} has another filter; none loaded", rc));
  }
  return Check(rc, "loading the filter");
}

}  // namespace isoboot::sys
