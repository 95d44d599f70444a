#include "linux/privilege.h"

#include <dirent.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <string_view>

#include <fmt/format.h>

namespace isoboot::sys {

static_assert(static_cast<int>(Capability::kNetBindService) == CAP_NET_BIND_SERVICE);
static_assert(static_cast<int>(Capability::kNetAdmin) == CAP_NET_ADMIN);
static_assert(static_cast<int>(Capability::kNetRaw) == CAP_NET_RAW);

namespace {

// One bit per capability, as the kernel's sets (capabilities 0..63).
struct CapSets {
  uint64_t effective = 0;
  uint64_t permitted = 0;
  uint64_t inheritable = 0;
};

uint64_t Bit(int cap) {
  return uint64_t{1} << cap;
}

// The raw syscalls avoid a libcap dependency; pid 0 is the calling thread.
std::optional<CapSets> GetCaps() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return std::nullopt;
  auto join = [](uint32_t lo, uint32_t hi) { return lo | uint64_t{hi} << 32; };
  return CapSets{join(data[0].effective, data[1].effective),
                 join(data[0].permitted, data[1].permitted),
                 join(data[0].inheritable, data[1].inheritable)};
}

bool SetCaps(const CapSets& sets) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  for (int i = 0; i < 2; ++i) {
    data[i].effective = static_cast<uint32_t>(sets.effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(sets.permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(sets.inheritable >> (32 * i));
  }
  return syscall(SYS_capset, &header, data) == 0;
}

uint64_t Mask(const std::vector<Capability>& caps) {
  uint64_t mask = 0;
  for (Capability c : caps)
    mask |= Bit(static_cast<int>(c));
  return mask;
}

std::string Names(const std::vector<Capability>& caps) {
  if (caps.empty()) return "no capabilities";
  std::string names = "keeping ";
  for (size_t i = 0; i < caps.size(); ++i)
    names += (i ? ", " : "") + std::string(CapabilityName(caps[i]));
  return names;
}

// The first of `caps` not in `permitted`.
std::optional<Capability> Missing(const std::vector<Capability>& caps, uint64_t permitted) {
  for (Capability c : caps) {
    if (!(permitted & Bit(static_cast<int>(c)))) return c;
  }
  return std::nullopt;
}

struct User {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

Result<User> LookUp(const std::string& name) {
  // ERANGE asks for a bigger buffer; 1 MiB is more than any passwd entry.
  for (size_t size = 4096; size <= (size_t{1} << 20); size *= 4) {
    std::string buf(size, '\0');
    passwd pw{};
    passwd* found = nullptr;
    int rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
    if (rc == ERANGE) continue;
    if (rc != 0) return OsError(rc, "looking up user " + name);
    if (!found) return MakeError(ErrorKind::kNotFound, name + ": no such user");
    return User{name, pw.pw_uid, pw.pw_gid};
  }
  return MakeError(ErrorKind::kExhausted, name + ": passwd entry too long");
}

// Threads of this process other than the caller (0 when unknown).
int OtherThreads() {
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return 0;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n > 0 ? n - 1 : 0;
}

// Bounding set: capabilities past the kernel's last one fail with EINVAL.
// Returns false if a drop was refused (no CAP_SETPCAP, e.g. in a container).
Result<bool> DropBoundingSet(uint64_t keep) {
  for (int cap = 0; cap < 64; ++cap) {
    if (keep & Bit(cap)) continue;
    int rc = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (rc < 0) break;  // EINVAL: past the last capability
    if (rc == 0) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EPERM) return false;
      return OsError(errno, fmt::format("dropping capability {} from the bounding set", cap));
    }
  }
  return true;
}

// Applies to the calling thread; both may be missing on old kernels.
Result<void> ClearAmbientAndLockExec() {
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return OsError(errno, "clearing the ambient capabilities");
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return OsError(errno, "PR_SET_NO_NEW_PRIVS");
  return {};
}

// Not root: ids stay, capabilities shrink to `keep` (always allowed).
Result<DropReport> ReduceOnly(const DropOptions& options, const CapSets& now) {
  uid_t ruid, euid, suid;
  getresuid(&ruid, &euid, &suid);
  if (!options.user.empty()) {
    auto user = LookUp(options.user);
    if (!user) return user.error();
    if (user->uid != ruid || user->uid != euid || user->uid != suid) {
      return MakeError(
          ErrorKind::kPermission,
          fmt::format("{}: switching user needs root (running as uid {})", options.user, euid));
    }
  }
  const uint64_t keep = Mask(options.keep);
  if (!SetCaps({now.effective & keep, now.permitted & keep, 0})) {
    return OsError(errno, "reducing the capabilities");
  }
  if (auto r = ClearAmbientAndLockExec(); !r) return r.error();
  return DropReport{
      false, fmt::format("not root (uid {}): user unchanged, {}", euid, Names(options.keep))};
}

}  // namespace

std::string_view CapabilityName(Capability cap) {
  switch (cap) {
    case Capability::kNetBindService:
      return "CAP_NET_BIND_SERVICE";
    case Capability::kNetAdmin:
      return "CAP_NET_ADMIN";
    case Capability::kNetRaw:
      return "CAP_NET_RAW";
  }
  return "CAP_?";
}

bool HasCapability(Capability cap) {
  auto sets = GetCaps();
  return sets && (sets->effective & Bit(static_cast<int>(cap)));
}

bool HasCapNetRaw() {
  return HasCapability(Capability::kNetRaw);
}

std::string NeedsCapabilityMessage(Capability cap) {
  char exe[PATH_MAX] = {};
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::string path = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "isoboot";
  std::string name(CapabilityName(cap));
  std::string lower;
  for (char c : name)
    lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return fmt::format(
      "needs {} (run as root or setcap {}+ep {}; under systemd: "
      "AmbientCapabilities={})",
      name, lower, path, name);
}

std::string NeedsCapNetRawMessage() {
  return NeedsCapabilityMessage(Capability::kNetRaw);
}

std::optional<Capability> CapabilityToBind(uint16_t port) {
  unsigned start = 1024;
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "r")) {
    if (std::fscanf(f, "%u", &start) != 1) start = 1024;
    std::fclose(f);
  }
  if (port == 0 || port >= start) return std::nullopt;
  return Capability::kNetBindService;
}

Result<DropReport> DropPrivileges(const DropOptions& options) {
  auto now = GetCaps();
  if (!now) return OsError(errno, "reading the capabilities");
  if (auto missing = Missing(options.keep, now->permitted)) {
    return MakeError(
        ErrorKind::kPermission,
        fmt::format("cannot keep {}: the process does not have it", CapabilityName(*missing)));
  }
  if (geteuid() != 0) return ReduceOnly(options, *now);
  if (options.user.empty()) {
    return MakeError(ErrorKind::kInvalidInput, "dropping root needs a user to run as");
  }
  auto user = LookUp(options.user);
  if (!user) return user.error();
  if (user->uid == 0) {
    return MakeError(ErrorKind::kInvalidInput,
                     options.user + ": is uid 0; running as it would drop nothing");
  }
  const uint64_t keep = Mask(options.keep);
  const int others = OtherThreads();

  // Order matters: the bounding set needs CAP_SETPCAP, so it goes while
  // still root; groups before the uid, which takes away CAP_SETGID;
  // KEEPCAPS so setresuid leaves the permitted set for capset to trim.
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return OsError(errno, "PR_SET_KEEPCAPS");
  auto bounded = DropBoundingSet(keep);
  if (!bounded) return bounded.error();
  if (options.supplementary_groups ? initgroups(user->name.c_str(), user->gid) != 0
                                   : setgroups(0, nullptr) != 0) {
    return OsError(errno, "setting the supplementary groups of " + user->name);
  }
  if (setresgid(user->gid, user->gid, user->gid) != 0) {
    return OsError(errno, fmt::format("setresgid({})", user->gid));
  }
  if (setresuid(user->uid, user->uid, user->uid) != 0) {
    return OsError(errno, fmt::format("setresuid({})", user->uid));
  }
  if (!SetCaps({keep, keep, 0})) return OsError(errno, "setting the kept capabilities");
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return OsError(errno, "clearing PR_SET_KEEPCAPS");
  if (auto r = ClearAmbientAndLockExec(); !r) return r.error();

  // Check what the kernel now holds rather than trust the calls.
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  getresuid(&ruid, &euid, &suid);
  getresgid(&rgid, &egid, &sgid);
  auto after = GetCaps();
  if (ruid != user->uid || euid != user->uid || suid != user->uid || rgid != user->gid ||
      egid != user->gid || sgid != user->gid || !after || after->permitted != keep ||
      after->effective != keep || after->inheritable != 0) {
    return MakeError(ErrorKind::kIo, "dropping root left other ids or capabilities than asked");
  }

  std::string groups = options.supplementary_groups
                           ? fmt::format("{} groups", getgroups(0, nullptr))
                           : "no supplementary groups";
  std::string summary = fmt::format("running as {} (uid {}, gid {}, {}), {}", user->name, user->uid,
                                    user->gid, groups, Names(options.keep));
  if (!*bounded) summary += "; bounding set unchanged (no CAP_SETPCAP)";
  if (others > 0) summary += fmt::format("; {} earlier thread(s) have no capabilities", others);
  return DropReport{true, summary};
}

}  // namespace isoboot::sys
