// `isoboot overlay key NAME`: the key that lets one node reach its own
// backups in `isoboot serve`'s store and nothing else (serve/backup_store.h).
// Compiled with the serve layer; registered by cli/overlay.cc.
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "cli/command.h"
#include "serve/backup_store.h"

namespace isoboot::cli {
namespace {

struct KeyArgs {
  std::string name;
  std::string backup_dir;
  std::string token_file;
  bool read_only = false;
};

int RunKey(const KeyArgs& a) {
  auto name = serve::BackupStore::CanonicalName(a.name);
  if (!name) throw std::runtime_error(fmt::format("{}: not a backup name", a.name));
  std::string file = a.token_file;
  if (file.empty()) {
    if (a.backup_dir.empty())
      throw std::runtime_error("give --backup-dir DIR or --token-file FILE");
    file = a.backup_dir + "/.token";
  }
  // Never creates the token: a key under a token nobody else has is useless.
  std::string token = serve::LoadExistingToken(file);
  auto right = a.read_only ? serve::KeyRight::kRead : serve::KeyRight::kWrite;
  std::puts(serve::DeriveKey(token, *name, right).c_str());
  return 0;
}

}  // namespace

void AddOverlayKeyCommand(CLI::App* overlay, Run& run) {
  auto k = std::make_shared<KeyArgs>();
  auto* key = overlay->add_subcommand(
      "key",
      "print the key with which one node backs up to (and reads) its own name in isoboot serve's "
      "store, e.g. isoboot overlay backup --token-file FILE; run it on the server");
  key->add_option("NAME", k->name, "backup name, e.g. the node's MAC 52:54:00:12:34:56")
      ->required();
  key->add_option("--backup-dir", k->backup_dir, "the store's directory (token: DIR/.token)");
  key->add_option("--token-file", k->token_file,
                  "the store's token file (serve's --backup-token-file)");
  key->add_flag("--read", k->read_only,
                "the read key instead (what serve puts in the node's boot entry)");
  key->callback([&run, k] { run = [k] { return RunKey(*k); }; });
}

}  // namespace isoboot::cli
