#pragma once
// systemd's service notification protocol (sd_notify(3)), without
// libsystemd: a unit with Type=notify gets $NOTIFY_SOCKET, an AF_UNIX
// datagram socket (a path, or an abstract name written with a leading '@'),
// and the service sends it newline-separated assignments such as "READY=1"
// or "STATUS=...", one datagram per state change.
//
// Threading: Send may be called from any thread (one sendto each).

#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"

namespace isoboot::sys {

class ServiceNotifier {
 public:
  // Reads $NOTIFY_SOCKET and unsets it (a child must not report for us).
  // Unset or empty: not run by a service manager; Send does nothing. The
  // socket is opened here, so Send needs no system call a later filter
  // (syscall_filter.h) might deny.
  static Result<ServiceNotifier> FromEnvironment();
  // To `address` (a path, or "@name" for an abstract socket); empty: none.
  static Result<ServiceNotifier> To(std::string_view address);

  bool enabled() const { return fd_.valid(); }
  // One datagram: e.g. "READY=1\nSTATUS=serving live.iso".
  Result<void> Send(std::string_view state) const;

  // "RELOADING=1" with MONOTONIC_USEC (systemd 253's Type=notify-reload
  // needs it; older managers ignore it).
  static std::string Reloading();

 private:
  UniqueFd fd_;
  // A sockaddr_un, kept as bytes: each datagram is sent to it (the socket
  // is not connected), so a manager that re-executes itself and binds the
  // socket anew still gets later notifications.
  std::string address_;
};

}  // namespace isoboot::sys
