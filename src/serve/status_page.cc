#include "serve/status_page.h"

#include <array>
#include <cmath>

#include <fmt/format.h>

#include "base/strings.h"

namespace isoboot::serve {
namespace {

std::string HtmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Seconds(int64_t ms) {
  int64_t s = std::max<int64_t>(0, ms) / 1000;
  if (s < 120) return fmt::format("{} s", s);
  if (s < 7200) return fmt::format("{} min", s / 60);
  return fmt::format("{} h", s / 3600);
}

constexpr std::array<Phase, 7> kPhases = {Phase::kDhcp,   Phase::kLoader, Phase::kKernel,
                                          Phase::kInitrd, Phase::kRoot,   Phase::kUp,
                                          Phase::kFailed};

// The page's only script: the same rows as the server renders, from
// /status.json, built with textContent (node data is never parsed as HTML).
constexpr std::string_view kScript = R"JS(
// As FormatSize (base/strings.h): "900 bytes", "1 MiB", "1.1 MiB".
const fmtBytes = n => { if (n < 1024) return n + " bytes";
  const u = ["KiB", "MiB", "GiB", "TiB"]; let i = 0;
  for (n /= 1024; n >= 1024 && i < u.length - 1; n /= 1024) i++;
  return n.toFixed(1).replace(/\.0$/, "") + " " + u[i]; };
const fmtSecs = s => s < 120 ? s + " s" : s < 7200 ? Math.floor(s / 60) + " min" : Math.floor(s / 3600) + " h";
function cell(tr, cls, text) { const td = document.createElement("td"); td.className = cls;
  td.textContent = text; tr.appendChild(td); return td; }
function render(data) {
  const body = document.createElement("tbody");
  const counts = {};
  for (const n of data.nodes) {
    counts[n.phase] = (counts[n.phase] || 0) + 1;
    if (n.stalled) counts.stalled = (counts.stalled || 0) + 1;
    const tr = document.createElement("tr");
    tr.className = "node" + (n.stalled ? " stalled" : "") + " phase-" + n.phase;
    tr.dataset.mac = n.mac; tr.dataset.phase = n.phase; tr.dataset.stalled = String(n.stalled);
    cell(tr, "mac", n.mac); cell(tr, "ip", n.ip); cell(tr, "firmware", n.firmware);
    cell(tr, "phase", n.phase + (n.failure ? ": " + n.failure : ""));
    cell(tr, "since", fmtSecs(n.seconds_in_phase) + " ago");
    cell(tr, "bytes", fmtBytes(n.bytes));
    cell(tr, "mark", n.stalled ? "stalled: nothing for " + fmtSecs(n.idle_seconds) : "");
    body.appendChild(tr);
  }
  body.id = "rows";
  document.getElementById("rows").replaceWith(body);
  for (const el of document.querySelectorAll("[data-count]"))
    el.textContent = counts[el.dataset.count] || 0;
  document.getElementById("total").textContent = data.nodes.length;
  document.getElementById("updated").textContent = new Date().toLocaleTimeString();
  document.getElementById("updated").className = "";
}
async function poll() {
  try {
    const r = await fetch("status.json", {cache: "no-store"});
    if (!r.ok) throw new Error(r.status);
    render(await r.json());
  } catch (e) { document.getElementById("updated").className = "lost"; }
  setTimeout(poll, REFRESH_MS);
}
setTimeout(poll, REFRESH_MS);
)JS";

constexpr std::string_view kStyle = R"CSS(
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
.summary span { margin-right: 1.2em; }
table { border-collapse: collapse; margin-top: 1em; }
th, td { padding: .25em .8em; text-align: left; border-bottom: 1px solid #ddd; }
td.mac, td.ip, td.bytes { font-family: ui-monospace, monospace; }
td.bytes { text-align: right; }
tr.phase-up td.phase { color: #176b25; font-weight: 600; }
tr.phase-failed td.phase { color: #b00020; font-weight: 600; }
tr.stalled { background: #fff3cd; }
tr.stalled td.mark { color: #8a5a00; font-weight: 600; }
#updated.lost { color: #b00020; }
#updated.lost::after { content: " (server not answering)"; }
)CSS";

}  // namespace

std::string StatusHtml(const std::vector<NodeStatus>& nodes, int64_t now_ms, std::string_view title,
                       unsigned refresh_ms) {
  std::array<size_t, kPhases.size()> counts{};
  size_t stalled = 0;
  std::string rows;
  for (const NodeStatus& n : nodes) {
    ++counts[static_cast<size_t>(n.phase)];
    stalled += n.stalled ? 1 : 0;
    const std::string_view phase = ToString(n.phase);
    fmt::format_to(std::back_inserter(rows),
                   "<tr class=\"node{}{}\" data-mac=\"{}\" data-phase=\"{}\" data-stalled=\"{}\">"
                   "<td class=\"mac\">{}</td><td class=\"ip\">{}</td><td class=\"firmware\">{}</td>"
                   "<td class=\"phase\">{}{}</td><td class=\"since\">{} ago</td>"
                   "<td class=\"bytes\">{}</td><td class=\"mark\">{}</td></tr>\n",
                   n.stalled ? " stalled" : "", fmt::format(" phase-{}", phase), FormatMac(n.mac),
                   phase, n.stalled ? "true" : "false", FormatMac(n.mac), HtmlEscape(n.ip),
                   HtmlEscape(n.firmware), phase,
                   n.failure.empty() ? "" : ": " + HtmlEscape(n.failure),
                   Seconds(now_ms - n.phase_since_ms), FormatSize(n.bytes),
                   n.stalled ? "stalled: nothing for " + Seconds(now_ms - n.last_active_ms) : "");
  }
  std::string summary;
  for (Phase p : kPhases) {
    fmt::format_to(std::back_inserter(summary), "<span>{}: <b data-count=\"{}\">{}</b></span>",
                   ToString(p), ToString(p), counts[static_cast<size_t>(p)]);
  }
  fmt::format_to(std::back_inserter(summary),
                 "<span>stalled: <b data-count=\"stalled\">{}</b></span>", stalled);
  std::string script(kScript);
  constexpr std::string_view kRefresh = "REFRESH_MS";
  for (size_t at; (at = script.find(kRefresh)) != std::string::npos;)
    script.replace(at, kRefresh.size(), std::to_string(refresh_ms));
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width\">"
      "<title>isoboot: {}</title><style>{}</style></head>\n<body>\n"
      "<h1>isoboot serve: {}</h1>\n"
      "<p class=\"summary\"><span>nodes: <b id=\"total\">{}</b></span>{}</p>\n"
      "<p>Phases: dhcp &rarr; loader &rarr; kernel &rarr; initrd &rarr; root &rarr; up. "
      "Updated <span id=\"updated\">at load</span>; a node served nothing new for a while is "
      "marked stalled.</p>\n"
      "<table id=\"nodes\"><thead><tr><th>MAC</th><th>address</th><th>firmware</th>"
      "<th>phase</th><th>since</th><th>bytes</th><th></th></tr></thead>\n"
      "<tbody id=\"rows\">\n{}</tbody></table>\n<script>{}</script>\n</body></html>\n",
      HtmlEscape(title), kStyle, HtmlEscape(title), nodes.size(), summary, rows, script);
}

void MetricsText::Family(std::string_view name, std::string_view type, std::string_view help) {
  family_ = std::string(name);
  fmt::format_to(std::back_inserter(text_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                 type == "info" ? "gauge" : type);
}

void MetricsText::Name(const Labels& labels) {
  text_ += family_;
  if (labels.empty()) return;
  text_ += '{';
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (!first) text_ += ',';
    first = false;
    text_ += key;
    text_ += "=\"";
    for (char c : value) {
      if (c == '\\') {
        text_ += "\\\\";
      } else if (c == '"') {
        text_ += "\\\"";
      } else if (c == '\n') {
        text_ += "\\n";
      } else {
        text_ += c;
      }
    }
    text_ += '"';
  }
  text_ += '}';
}

void MetricsText::Sample(const Labels& labels, double value) {
  Name(labels);
  if (std::isnan(value)) {
    text_ += " NaN\n";
  } else if (std::isinf(value)) {
    text_ += value > 0 ? " +Inf\n" : " -Inf\n";
  } else {
    fmt::format_to(std::back_inserter(text_), " {}\n", value);
  }
}

void MetricsText::Sample(const Labels& labels, uint64_t value) {
  Name(labels);
  fmt::format_to(std::back_inserter(text_), " {}\n", value);
}

void NodeMetrics(MetricsText& m, const std::vector<NodeStatus>& nodes) {
  std::array<uint64_t, kPhases.size()> counts{};
  uint64_t stalled = 0;
  for (const NodeStatus& n : nodes) {
    ++counts[static_cast<size_t>(n.phase)];
    stalled += n.stalled ? 1 : 0;
  }
  m.Family("isoboot_nodes", "gauge", "Nodes known now, by boot phase.");
  for (Phase p : kPhases)
    m.Sample({{"phase", ToString(p)}}, counts[static_cast<size_t>(p)]);
  m.Family("isoboot_nodes_stalled", "gauge",
           "Nodes neither up nor failed that were served nothing new for a while.");
  m.Sample({}, stalled);
  // Per node: bounded by the tracker (capacity, forget_after).
  m.Family("isoboot_node_phase", "gauge",
           "The boot phase of each node (1 for its current phase; dhcp, loader, kernel, initrd, "
           "root, up, failed).");
  std::vector<std::string> macs;
  macs.reserve(nodes.size());
  for (const NodeStatus& n : nodes)
    macs.push_back(FormatMac(n.mac));
  for (size_t i = 0; i < nodes.size(); ++i)
    m.Sample({{"mac", macs[i]}, {"phase", ToString(nodes[i].phase)}}, uint64_t{1});
  m.Family("isoboot_node_boot_bytes", "gauge",
           "Bytes served to each node in its current boot, every protocol.");
  for (size_t i = 0; i < nodes.size(); ++i)
    m.Sample({{"mac", macs[i]}}, nodes[i].bytes);
  m.Family("isoboot_node_boots_total", "counter",
           "Boots of each node seen since the server started.");
  for (size_t i = 0; i < nodes.size(); ++i)
    m.Sample({{"mac", macs[i]}}, nodes[i].boots);
  m.Family("isoboot_node_stalled", "gauge", "1 when the node is marked stalled.");
  for (size_t i = 0; i < nodes.size(); ++i)
    m.Sample({{"mac", macs[i]}}, uint64_t{nodes[i].stalled ? 1u : 0u});
}

}  // namespace isoboot::serve
