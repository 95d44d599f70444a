#pragma once
// (Named privilege.h, not capability.h, so it never shadows <linux/capability.h>.)
// Linux capabilities and credentials: checks that say exactly which privilege
// is missing instead of a bare EPERM, and DropPrivileges, which lets a daemon
// that started as root give it up once its privileged sockets are open.
//
// Threading: the checks are thread-safe and look at the calling thread.
// DropPrivileges has a rule of its own (below).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace isoboot::sys {

// The capabilities isoboot asks for; the values are the kernel's CAP_* numbers.
enum class Capability : int {
  kNetBindService = 10,  // bind a port below net.ipv4.ip_unprivileged_port_start
  kNetAdmin = 12,        // e.g. SO_RCVBUFFORCE past net.core.rmem_max
  kNetRaw = 13,          // open AF_PACKET and raw IP sockets; SO_BINDTODEVICE
};

// "CAP_NET_RAW".
std::string_view CapabilityName(Capability cap);

// True if the calling thread has `cap` in its effective set.
bool HasCapability(Capability cap);
bool HasCapNetRaw();

// "needs CAP_NET_RAW (run as root or setcap cap_net_raw+ep /path/to/isoboot;
// under systemd: AmbientCapabilities=CAP_NET_RAW)".
std::string NeedsCapabilityMessage(Capability cap);
std::string NeedsCapNetRawMessage();

// The capability that binding `port` (TCP or UDP) needs: CAP_NET_BIND_SERVICE
// below net.ipv4.ip_unprivileged_port_start (1024 unless changed); none for
// port 0 (the kernel picks) or above.
std::optional<Capability> CapabilityToBind(uint16_t port);

struct DropOptions {
  // The user to run as (looked up with getpwnam_r), with its primary group.
  // Required when running as root; when not root, empty or the current user.
  std::string user;
  // Left permitted and effective; every other capability goes, from the
  // bounding set too. Inheritable and ambient end empty.
  std::vector<Capability> keep;
  // false: no supplementary groups (setgroups(0)); true: the user's, from
  // initgroups (e.g. to read a group-readable image).
  bool supplementary_groups = false;
};

struct DropReport {
  bool switched_user = false;  // false: was not root, user unchanged
  // One line for the log, e.g. "running as nobody (uid 65534, gid 65534, no
  // supplementary groups), keeping CAP_NET_RAW".
  std::string summary;
};

// As root: switches every thread to `user` (setresgid, setresuid; groups as
// above), keeps exactly `keep`, drops the rest of the bounding set and sets
// no_new_privs, so no later execve can gain privileges. Not root (e.g. started
// by systemd with User= and AmbientCapabilities=): changes no ids, only
// reduces the capabilities to `keep` and sets no_new_privs, and says so.
//
// Errors (one line): kNotFound "isoboot: no such user"; kInvalidInput no
// user given as root, or a user that is uid 0; kPermission a different user
// when not root, or `keep` naming a capability the process does not have;
// kIo a failed system call. After a kIo error the process may be half-dropped
// and must exit.
//
// REQUIRES: called before any thread that needs a kept capability starts:
// capabilities and PR_SET_KEEPCAPS belong to a thread. Threads that already
// exist switch user and groups too (glibc applies setresuid, setresgid and
// setgroups to every thread) but lose all their capabilities; threads started
// afterwards inherit the caller's. The older threads' bounding sets stay full
// and their no_new_privs unset until InstallSeccompFilter (syscall_filter.h), whose
// thread sync sets no_new_privs on every thread.
Result<DropReport> DropPrivileges(const DropOptions& options);

}  // namespace isoboot::sys
