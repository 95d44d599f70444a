// Serves one ISO over HTTP with isoboot's server, for bench/http_bench.sh:
// the whole image as /live.iso and its files by their paths.
// Usage: http_bench_server IMAGE PORT [THREADS]; stops on SIGINT/SIGTERM.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "base/logging.h"
#include "http/server.h"
#include "iso/image.h"
#include "vfs/vfs.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s IMAGE PORT [THREADS]\n", argv[0]);
    return 2;
  }
  auto image = isoboot::iso::Image::Open(argv[1]);
  if (!image) {
    std::fprintf(stderr, "%s\n", image.error().message.c_str());
    return 1;
  }
  std::shared_ptr<const isoboot::iso::Image> shared(std::move(*image));
  auto tree = std::make_shared<isoboot::vfs::Tree>();
  isoboot::vfs::AddImageFiles(*tree, shared);
  tree->Add("live.iso", isoboot::vfs::WholeImageSource(shared));
  std::shared_ptr<const isoboot::vfs::Tree> frozen = tree;

  isoboot::http::ServerOptions options;
  options.address = "127.0.0.1";
  options.port = static_cast<uint16_t>(std::atoi(argv[2]));
  options.threads = argc > 3 ? static_cast<unsigned>(std::atoi(argv[3])) : 1;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts
  isoboot::http::Server server([frozen](std::string_view) { return frozen; }, options,
                               isoboot::NullLogger());
  std::thread runner([&] { server.Run(); });
  int sig = 0;
  sigwait(&set, &sig);
  server.Stop();
  runner.join();
  return 0;
}
