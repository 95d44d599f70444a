#include "serve/node_images.h"

#include <chrono>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "iso/image.h"

namespace isoboot::serve {

bool operator==(const iso::NodeImageSpec& a, const iso::NodeImageSpec& b) {
  return a.kernel_args == b.kernel_args && a.extra_initrds == b.extra_initrds &&
         a.files_dir == b.files_dir && a.files_path == b.files_path;
}

// One image being made or made: the first Get makes it while holding
// `mu`, so later ones wait for it and then share the result.
struct NodeImages::Made {
  std::mutex mu;
  bool done = false;       // guarded by mu
  vfs::SourcePtr source;   // guarded by mu; null: it could not be made
  uint64_t own_bytes = 0;  // guarded by mu
};

vfs::SourcePtr NodeImages::Get(const std::shared_ptr<const iso::Image>& base,
                               const std::string& name, const iso::NodeImageSpec& spec) {
  std::shared_ptr<Made> made;
  {
    std::lock_guard lock(mu_);
    Entry& e = entries_[name];
    if (e.base != base || !(e.spec == spec) || !e.made) {
      e = Entry{base, spec, std::make_shared<Made>()};
    }
    made = e.made;
  }
  std::lock_guard lock(made->mu);
  if (made->done) return made->source;
  made->done = true;
  const auto start = std::chrono::steady_clock::now();
  auto node = iso::MakeNodeImage(*base, spec);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!node) {
    log_->error("node {}: no node image: {}", name, node.error().message);
    return nullptr;
  }
  for (const std::string& w : node->warnings)
    log_->warn("node {}: {}", name, w);
  auto grown = std::make_shared<const iso::GrownImage>(std::move(node->grown));
  made->own_bytes = grown->own_bytes();
  made->source = vfs::GrownImageSource(base, grown);
  log_->info(
      "node {}: image made in {:.2f} s, {} bytes ({} of them its own over {}); menus "
      "changed: {}",
      name, seconds, grown->size(), grown->own_bytes(), base->path(),
      node->menus.empty() ? std::string("none") : fmt::format("{}", fmt::join(node->menus, ", ")));
  return made->source;
}

size_t NodeImages::count() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

uint64_t NodeImages::own_bytes() const {
  std::vector<std::shared_ptr<Made>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, e] : entries_)
      all.push_back(e.made);
  }
  uint64_t sum = 0;
  for (const auto& m : all) {
    std::unique_lock lock(m->mu, std::try_to_lock);  // one being made counts later
    if (lock.owns_lock()) sum += m->own_bytes;
  }
  return sum;
}

}  // namespace isoboot::serve
