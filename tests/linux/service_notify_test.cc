#include "linux/service_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "base/unique_fd.h"
#include "tests/support/temp_dir.h"

namespace isoboot::sys {
namespace {

// The service manager's end: a datagram socket bound to `address` (a path,
// or "@name": abstract).
UniqueFd Listen(const std::string& address) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, address.data(), address.size());
  socklen_t length = offsetof(sockaddr_un, sun_path) + address.size();
  if (address[0] == '@') {
    sun.sun_path[0] = '\0';
  } else {
    ++length;
  }
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), length), 0) << address;
  return fd;
}

std::string Receive(const UniqueFd& fd) {
  char buffer[4096];
  ssize_t n = ::recv(fd.get(), buffer, sizeof buffer, MSG_DONTWAIT);
  return n < 0 ? std::string("<nothing>") : std::string(buffer, static_cast<size_t>(n));
}

TEST(ServiceNotifier, SendsOneDatagramPerStateToAPath) {
  isoboot::test::TempDir dir;
  const std::string path = (dir / "notify").string();
  UniqueFd manager = Listen(path);
  auto notifier = ServiceNotifier::To(path);
  ASSERT_TRUE(notifier) << notifier.error().message;
  EXPECT_TRUE(notifier->enabled());
  ASSERT_TRUE(notifier->Send("READY=1\nSTATUS=serving"));
  ASSERT_TRUE(notifier->Send("STOPPING=1"));
  EXPECT_EQ(Receive(manager), "READY=1\nSTATUS=serving");
  EXPECT_EQ(Receive(manager), "STOPPING=1");
}

TEST(ServiceNotifier, SendsToAnAbstractName) {
  const std::string name = "@isoboot-notify-test-" + std::to_string(::getpid());
  UniqueFd manager = Listen(name);
  auto notifier = ServiceNotifier::To(name);
  ASSERT_TRUE(notifier) << notifier.error().message;
  ASSERT_TRUE(notifier->Send("READY=1"));
  EXPECT_EQ(Receive(manager), "READY=1");
}

TEST(ServiceNotifier, ReachesAManagerThatBoundTheSocketAnew) {
  // systemd re-executing itself binds the socket again: not connected, the
  // notifier still reaches it.
  isoboot::test::TempDir dir;
  const std::string path = (dir / "notify").string();
  auto manager = std::make_unique<UniqueFd>(Listen(path));
  auto notifier = ServiceNotifier::To(path);
  ASSERT_TRUE(notifier);
  manager.reset();
  ::unlink(path.c_str());
  EXPECT_FALSE(notifier->Send("READY=1")) << "sent to a socket nobody holds";
  UniqueFd again = Listen(path);
  ASSERT_TRUE(notifier->Send("READY=1"));
  EXPECT_EQ(Receive(again), "READY=1");
}

TEST(ServiceNotifier, WithoutAManagerSendsNothing) {
  ::unsetenv("NOTIFY_SOCKET");
  auto notifier = ServiceNotifier::FromEnvironment();
  ASSERT_TRUE(notifier);
  EXPECT_FALSE(notifier->enabled());
  EXPECT_TRUE(notifier->Send("READY=1"));
}

TEST(ServiceNotifier, TakesTheEnvironmentsSocketAndUnsetsIt) {
  isoboot::test::TempDir dir;
  const std::string path = (dir / "notify").string();
  UniqueFd manager = Listen(path);
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  auto notifier = ServiceNotifier::FromEnvironment();
  ASSERT_TRUE(notifier);
  EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr) << "a child would report for the daemon";
  ASSERT_TRUE(notifier->Send("READY=1"));
  EXPECT_EQ(Receive(manager), "READY=1");
}

TEST(ServiceNotifier, RejectsWhatIsNotASocketAddress) {
  for (const std::string& bad : {std::string("relative/path"), std::string(200, '/')}) {
    auto notifier = ServiceNotifier::To(bad);
    ASSERT_FALSE(notifier) << bad;
    EXPECT_NE(notifier.error().message.find("NOTIFY_SOCKET="), std::string::npos);
  }
}

TEST(ServiceNotifier, ReloadingCarriesTheMonotonicClock) {
  std::string state = ServiceNotifier::Reloading();
  ASSERT_EQ(state.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << state;
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t usec = std::stoull(state.substr(state.find('=', 12) + 1));
  uint64_t now_usec = static_cast<uint64_t>(now.tv_sec) * 1'000'000 + now.tv_nsec / 1000;
  EXPECT_LE(usec, now_usec);
  EXPECT_GT(usec, now_usec - 60'000'000);
}

}  // namespace
}  // namespace isoboot::sys
