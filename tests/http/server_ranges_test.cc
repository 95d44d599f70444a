// Thousands of random single and multi-range requests sent by curl (one
// curl run per batch, so connections are reused), every answer parsed and
// checked byte for byte against the file.
#include <algorithm>
#include <random>

#include <fmt/format.h>

#include "http/server.h"
#include "tests/http/fixture.h"

namespace isoboot::http::testing {
namespace {

struct Interval {
  uint64_t first, last;
  bool operator==(const Interval&) const = default;
};

// Sorted union of intervals, touching ones joined.
std::vector<Interval> Union(std::vector<Interval> v) {
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<Interval> out;
  for (const Interval& i : v) {
    if (!out.empty() && i.first <= out.back().last + 1) {
      out.back().last = std::max(out.back().last, i.last);
    } else {
      out.push_back(i);
    }
  }
  return out;
}

struct Request {
  std::string name;
  std::string range;                  // as sent
  std::vector<Interval> satisfiable;  // what RFC 9110 says each spec selects
};

Request RandomRequest(std::mt19937_64& rng, const std::string& name, uint64_t size) {
  Request r{name, "", {}};
  const int count = 1 + static_cast<int>(rng() % 5);
  const bool disjoint = rng() % 2 == 0;
  auto pick = [&](uint64_t n) { return n == 0 ? 0 : rng() % n; };
  std::vector<std::string> specs;
  if (disjoint && size > 0) {
    // Non-overlapping ranges in a shuffled order: served exactly as asked.
    std::vector<uint64_t> cuts;
    for (int i = 0; i < 2 * count; ++i)
      cuts.push_back(pick(size));
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    for (size_t i = 0; i + 1 < cuts.size(); i += 2) {
      uint64_t last = cuts[i + 1] - 1;
      specs.push_back(fmt::format("{}-{}", cuts[i], last));
      r.satisfiable.push_back({cuts[i], last});
    }
    if (specs.empty()) {
      specs.push_back("0-0");
      r.satisfiable.push_back({0, 0});
    }
    std::vector<size_t> order(specs.size());
    for (size_t i = 0; i < order.size(); ++i)
      order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<std::string> s2;
    std::vector<Interval> i2;
    for (size_t i : order) {
      s2.push_back(specs[i]);
      i2.push_back(r.satisfiable[i]);
    }
    specs = s2;
    r.satisfiable = i2;
  } else {
    for (int i = 0; i < count; ++i) {
      switch (rng() % 6) {
        case 0: {  // first-last, possibly past the end
          uint64_t a = pick(size + 10), b = a + pick(size / 2 + 10);
          specs.push_back(fmt::format("{}-{}", a, b));
          if (a < size) r.satisfiable.push_back({a, std::min(b, size - 1)});
          break;
        }
        case 1: {  // first-
          uint64_t a = pick(size + 2);
          specs.push_back(fmt::format("{}-", a));
          if (a < size) r.satisfiable.push_back({a, size - 1});
          break;
        }
        case 2: {  // -suffix
          uint64_t n = pick(size + 100);
          specs.push_back(fmt::format("-{}", n));
          if (n > 0 && size > 0) r.satisfiable.push_back({size - std::min(n, size), size - 1});
          break;
        }
        default: {  // a short range
          uint64_t a = pick(size), b = a + pick(4096);
          specs.push_back(fmt::format("{}-{}", a, b));
          if (a < size) r.satisfiable.push_back({a, std::min(b, size - 1)});
        }
      }
    }
  }
  for (size_t i = 0; i < specs.size(); ++i)
    r.range += (i ? "," : "") + specs[i];
  return r;
}

bool Overlapping(std::vector<Interval> v) {
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i].first <= v[i - 1].last) return true;
  }
  return false;
}

void Check(const Request& r, const std::string& content, const Head& head,
           const std::string& body) {
  SCOPED_TRACE(fmt::format("{} bytes={} (size {})", r.name, r.range, content.size()));
  if (r.satisfiable.empty()) {
    EXPECT_EQ(head.status, 416u);
    EXPECT_EQ(head.Get("content-range"), fmt::format("bytes */{}", content.size()));
    return;
  }
  ASSERT_EQ(head.status, 206u);
  std::vector<Part> parts;
  const std::string type = head.Get("content-type");
  if (type.starts_with("multipart/byteranges; boundary=")) {
    auto p = ParseMultipart(body, type.substr(type.find('=') + 1));
    ASSERT_TRUE(p);
    parts = std::move(*p);
    EXPECT_GE(parts.size(), 2u);
  } else {
    Part p;
    ASSERT_TRUE(ParseContentRange(head.Get("content-range"), p)) << head.Get("content-range");
    p.data = body;
    parts.push_back(std::move(p));
  }
  std::vector<Interval> got;
  for (const Part& p : parts) {
    EXPECT_EQ(p.total, content.size());
    ASSERT_LT(p.last, content.size());
    ASSERT_EQ(p.data.size(), p.last - p.first + 1);
    EXPECT_TRUE(p.data == content.substr(p.first, p.last - p.first + 1))
        << "part " << p.first << "-" << p.last << " differs";
    got.push_back({p.first, p.last});
  }
  if (!Overlapping(r.satisfiable)) {
    EXPECT_EQ(got, r.satisfiable);  // exactly what was asked, in the client's order
  } else {
    EXPECT_EQ(got, Union(got)) << "coalesced parts must be sorted and disjoint";
    EXPECT_EQ(Union(got), Union(r.satisfiable));
  }
}

TEST(ServerRangesTest, ThousandsOfRandomRangeRequests) {
  TempDir dir;
  ServedTree served(dir);
  RunningServer server(served.tree, ServerOptions{});
  const std::vector<std::string> names = {
      "boot/x86_64/loader/initrd", "live.iso", "frag.bin", "menu.ipxe",
      "boot/x86_64/loader/linux",  "empty"};
  std::mt19937_64 rng(20261122);
  constexpr int kBatches = 10, kPerBatch = 200;
  for (int batch = 0; batch < kBatches; ++batch) {
    std::vector<Request> requests;
    std::string config;
    for (int i = 0; i < kPerBatch; ++i) {
      const std::string& name = names[rng() % names.size()];
      requests.push_back(RandomRequest(rng, name, served.expected.at(name).size()));
      if (i > 0) config += "next\n";  // a trailing "next" would be an empty transfer
      config += fmt::format("url = \"{}\"\nrange = \"{}\"\noutput = \"{}\"\ndump-header = \"{}\"\n",
                            server.Url(name), requests.back().range,
                            (dir / fmt::format("b{}", i)).string(),
                            (dir / fmt::format("h{}", i)).string());
    }
    WriteFile(dir / "batch.conf", config);
    std::string out;
    ASSERT_EQ(Sh(fmt::format("curl -s -S --max-time 300 -w '%{{num_connects}}\\n' -K {} 2>&1",
                             (dir / "batch.conf").string()),
                 &out),
              0)
        << out;
    // One connection per batch: keep-alive held across 200 requests.
    EXPECT_EQ(std::count(out.begin(), out.end(), '1'), 1) << out;
    for (int i = 0; i < kPerBatch; ++i) {
      const Request& r = requests[i];
      Check(r, served.expected.at(r.name), ParseHead(ReadFile(dir / fmt::format("h{}", i))),
            ReadFile(dir / fmt::format("b{}", i)));
      std::remove((dir / fmt::format("b{}", i)).c_str());
      std::remove((dir / fmt::format("h{}", i)).c_str());
    }
    if (HasFailure()) break;
  }
  EXPECT_EQ(server.RecordsAtLeast(kBatches * kPerBatch).size(),
            static_cast<size_t>(kBatches * kPerBatch));
}

}  // namespace
}  // namespace isoboot::http::testing
