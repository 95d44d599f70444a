#include "linux/service_notify.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

namespace isoboot::sys {
namespace {

struct Address {
  sockaddr_un sun{};
  socklen_t length = 0;
};

Result<Address> ParseAddress(std::string_view text) {
  Address a;
  a.sun.sun_family = AF_UNIX;
  if (text.size() >= sizeof a.sun.sun_path || (text[0] != '/' && text[0] != '@')) {
    return MakeError(ErrorKind::kInvalidInput,
                     fmt::format("NOTIFY_SOCKET={}: not a socket path or @name", text));
  }
  std::memcpy(a.sun.sun_path, text.data(), text.size());
  if (text[0] == '@') a.sun.sun_path[0] = '\0';  // abstract: no terminating NUL counted
  a.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + text.size() +
                                    (text[0] == '/' ? 1 : 0));
  return a;
}

}  // namespace

Result<ServiceNotifier> ServiceNotifier::To(std::string_view address) {
  ServiceNotifier n;
  if (address.empty()) return n;
  auto a = ParseAddress(address);
  if (!a) return a.error();
  n.fd_.Reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!n.fd_.valid()) return OsError(errno, "notify socket");
  n.address_ = std::string(reinterpret_cast<const char*>(&a->sun), a->length);
  return n;
}

Result<ServiceNotifier> ServiceNotifier::FromEnvironment() {
  const char* env = std::getenv("NOTIFY_SOCKET");
  std::string address = env ? env : "";
  ::unsetenv("NOTIFY_SOCKET");
  return To(address);
}

Result<void> ServiceNotifier::Send(std::string_view state) const {
  if (!enabled()) return {};
  ssize_t n = ::sendto(fd_.get(), state.data(), state.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(address_.data()),
                       static_cast<socklen_t>(address_.size()));
  if (n < 0) return OsError(errno, "notifying the service manager");
  return {};
}

std::string ServiceNotifier::Reloading() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t usec =
      static_cast<uint64_t>(now.tv_sec) * 1'000'000 + static_cast<uint64_t>(now.tv_nsec) / 1000;
  return fmt::format("RELOADING=1\nMONOTONIC_USEC={}", usec);
}

}  // namespace isoboot::sys
