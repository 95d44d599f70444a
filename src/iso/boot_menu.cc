#include "iso/boot_menu.h"

#include <vector>

#include <fmt/format.h>

#include "base/strings.h"

namespace isoboot::iso {
namespace {

// One line of a menu: its text without the line end, and the line end
// ("\n", "\r\n" or "" for a last line without one), kept as found.
struct Line {
  std::string text;
  std::string end;
};

std::vector<Line> SplitLines(std::string_view s) {
  std::vector<Line> lines;
  while (!s.empty()) {
    size_t nl = s.find('\n');
    std::string_view body = nl == std::string_view::npos ? s : s.substr(0, nl);
    const bool cr = body.ends_with('\r');
    if (cr) body.remove_suffix(1);
    // Not built by insert(): GCC 12 at -O3 warns about that (-Wrestrict) wrongly.
    const char* end = nl == std::string_view::npos ? (cr ? "\r" : "") : (cr ? "\r\n" : "\n");
    lines.push_back({std::string(body), end});
    s.remove_prefix(nl == std::string_view::npos ? s.size() : nl + 1);
  }
  return lines;
}

std::string JoinLines(const std::vector<Line>& lines) {
  std::string out;
  for (const Line& l : lines)
    out += l.text + l.end;
  return out;
}

// The line end new lines get: the file's own.
std::string LineEnd(const std::vector<Line>& lines) {
  for (const Line& l : lines) {
    if (!l.end.empty()) return l.end;
  }
  return "\n";
}

bool IsBlank(char c) {
  return c == ' ' || c == '\t';
}

// The first word of a line (lower-cased) and where the rest starts.
std::pair<std::string, size_t> Keyword(std::string_view line) {
  size_t start = 0;
  while (start < line.size() && IsBlank(line[start]))
    ++start;
  size_t end = start;
  while (end < line.size() && !IsBlank(line[end]))
    ++end;
  size_t rest = end;
  while (rest < line.size() && IsBlank(line[rest]))
    ++rest;
  return {ToLower(line.substr(start, end - start)), rest};
}

std::string Indent(std::string_view line) {
  size_t n = 0;
  while (n < line.size() && IsBlank(line[n]))
    ++n;
  return std::string(line.substr(0, n));
}

// Trailing blanks dropped, but not one a backslash escapes (GRUB's "a\ ").
std::string WithoutTrailingBlanks(std::string s) {
  while (!s.empty() && IsBlank(s.back()) && !(s.size() >= 2 && s[s.size() - 2] == '\\'))
    s.pop_back();
  return s;
}

// ---- syslinux ----

// A kernel syslinux runs as a module rather than Linux: menus, chain
// loaders, memtest and the like.
bool IsModule(std::string_view file) {
  std::string f = ToLower(file);
  for (std::string_view ext : {".c32", ".com", ".cbt", ".bin", ".bs", ".bss", ".0", ".img"}) {
    if (f.ends_with(ext)) return true;
  }
  return false;
}

struct SyslinuxEntry {
  size_t kernel = 0;             // line of KERNEL/LINUX
  std::optional<size_t> append;  // line of APPEND
  std::optional<size_t> initrd;  // line of INITRD
  bool linux_kernel = false;
};

// `append`'s arguments with `path` added to its first initrd= (or a new
// one), and `args` after them.
std::string SyslinuxAppend(std::string_view arguments, const MenuChange& change, bool add_initrd) {
  std::string out(Trim(arguments, " \t"));
  if (out == "-") out.clear();  // "APPEND -": no arguments at all
  if (add_initrd && !change.extra_initrd.empty()) {
    size_t at = std::string::npos;
    for (size_t i = 0; i + 7 <= out.size(); ++i) {
      if ((i == 0 || IsBlank(out[i - 1])) && EqualsIgnoreCase(out.substr(i, 7), "initrd=")) {
        at = i;
        break;
      }
    }
    if (at != std::string::npos) {
      size_t end = at;
      while (end < out.size() && !IsBlank(out[end]))
        ++end;
      out.insert(end, "," + change.extra_initrd);
    } else {
      out += (out.empty() ? "" : " ") + ("initrd=" + change.extra_initrd);
    }
  }
  if (!change.kernel_args.empty()) out += (out.empty() ? "" : " ") + change.kernel_args;
  return out;
}

Result<RewrittenMenu> RewriteSyslinux(std::vector<Line> lines, const MenuChange& change) {
  std::vector<SyslinuxEntry> entries;
  std::optional<std::string> global_append;
  bool in_label = false;
  bool in_text = false;  // TEXT HELP ... ENDTEXT: shown as it is
  for (size_t i = 0; i < lines.size(); ++i) {
    auto [key, rest] = Keyword(lines[i].text);
    std::string_view value = std::string_view(lines[i].text).substr(rest);
    if (in_text) {
      in_text = key != "endtext";
    } else if (key == "text") {
      in_text = true;
    } else if (key == "label") {
      in_label = true;
      entries.push_back({});
      entries.back().kernel = SIZE_MAX;
    } else if (!in_label) {
      if (key == "append") global_append = std::string(value);
    } else if (key == "kernel" || key == "linux") {
      SyslinuxEntry& e = entries.back();
      e.kernel = i;
      std::string_view file = Trim(value, " \t");
      file = file.substr(0, file.find_first_of(" \t"));
      e.linux_kernel = key == "linux" || !IsModule(file);
    } else if (key == "append") {
      entries.back().append = i;
    } else if (key == "initrd") {
      entries.back().initrd = i;
    }
  }
  RewrittenMenu out;
  const std::string end = LineEnd(lines);
  // Lines are inserted from the last entry backwards, so earlier indexes hold.
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    const SyslinuxEntry& e = *it;
    if (e.kernel == SIZE_MAX || !e.linux_kernel) continue;
    ++out.entries;
    bool initrd_in_line = false;
    if (e.initrd && !change.extra_initrd.empty()) {
      Line& l = lines[*e.initrd];
      l.text = WithoutTrailingBlanks(l.text) + "," + change.extra_initrd;
      initrd_in_line = true;
    }
    if (e.append) {
      Line& l = lines[*e.append];
      size_t rest = Keyword(l.text).second;
      std::string prefix = l.text.substr(0, rest);
      if (!prefix.empty() && !IsBlank(prefix.back())) prefix += ' ';
      l.text =
          prefix + SyslinuxAppend(std::string_view(l.text).substr(rest), change, !initrd_in_line);
    } else {
      // The label has no APPEND of its own: it used the global one, which
      // its own line now replaces, so it is carried over.
      std::string line = Indent(lines[e.kernel].text) + "append " +
                         SyslinuxAppend(global_append.value_or(""), change, !initrd_in_line);
      lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(e.kernel) + 1, Line{line, end});
      if (lines[e.kernel].end.empty()) lines[e.kernel].end = end;
    }
  }
  out.text = JoinLines(lines);
  return out;
}

// ---- GRUB ----

// Where the command on a GRUB line ends: at an unquoted ';' or a '#' that
// starts a word, else the line's end; nullopt when a quote does not close
// (a command continued on the next line, which is not touched).
std::optional<size_t> GrubCommandEnd(std::string_view line) {
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote == '\'') {
      if (c == '\'') quote = 0;
    } else if (quote == '"') {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quote = 0;
      }
    } else if (c == '\\') {
      ++i;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == ';') {
      return i;
    } else if (c == '#' && (i == 0 || IsBlank(line[i - 1]))) {
      return i;
    }
  }
  if (quote != 0 || (!line.empty() && line.back() == '\\')) return std::nullopt;
  return line.size();
}

// A word as GRUB passes it on unchanged: quoted where it has characters the
// shell-like parser would act on.
std::string GrubWord(std::string_view word) {
  for (char c : word) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 std::string_view("_.,:/=@+%-").find(c) != std::string_view::npos;
    if (!plain) return fmt::format("'{}'", word);
  }
  return std::string(word);
}

std::string GrubWords(std::string_view args) {
  std::string out;
  while (!args.empty()) {
    args = Trim(args, " \t");
    size_t end = args.find_first_of(" \t");
    std::string_view word = args.substr(0, end);
    if (!word.empty()) out += (out.empty() ? "" : " ") + GrubWord(word);
    args.remove_prefix(end == std::string_view::npos ? args.size() : end);
  }
  return out;
}

// The "(hd0,gpt2)" or "($root)" a path on `line` starts with, if any, so
// the added initrd is read from the same device. Unquoted where it is
// used: in quotes GRUB would not expand $root.
std::string GrubDevicePrefix(std::string_view first_path) {
  if (!first_path.starts_with('(')) return "";
  size_t close = first_path.find(')');
  if (close == std::string_view::npos) return "";
  // A device name or a variable holding one: "(hd0,gpt2)", "($root)".
  for (char c : first_path.substr(1, close - 1)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ',' || c == '$' || c == '-' || c == '{' || c == '}';
    if (!ok) return "";
  }
  return std::string(first_path.substr(0, close + 1));
}

std::string FirstArgument(std::string_view line, size_t rest) {
  std::string_view v = line.substr(rest);
  return std::string(v.substr(0, v.find_first_of(" \t")));
}

Result<RewrittenMenu> RewriteGrub(std::vector<Line> lines, const MenuChange& change) {
  RewrittenMenu out;
  const std::string end = LineEnd(lines);
  // The linux line of the entry being read, until its initrd line (or the
  // entry's end) is seen.
  std::optional<size_t> pending;
  std::string pending_device;
  std::vector<std::pair<size_t, Line>> inserts;  // after line, new line
  auto close_entry = [&] {
    if (pending && !change.extra_initrd.empty()) {
      inserts.push_back({*pending, Line{Indent(lines[*pending].text) + "initrd " + pending_device +
                                            GrubWord(change.extra_initrd),
                                        end}});
    }
    pending.reset();
  };
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string& text = lines[i].text;
    auto [key, rest] = Keyword(text);
    if (key == "}" || key == "menuentry" || key == "submenu") {
      close_entry();
      continue;
    }
    bool is_linux = key == "linux" || key == "linuxefi" || key == "linux16";
    bool is_initrd = key == "initrd" || key == "initrdefi" || key == "initrd16";
    // An initrd line loads for the kernel before it; one with no kernel
    // line before it in its entry does nothing, and is left so.
    if (!is_linux && !(is_initrd && pending)) continue;
    std::optional<size_t> command_end = GrubCommandEnd(text);
    if (!command_end) {
      return MakeError(fmt::format(
          "line {}: a quote or a line continuation that isn't closed on the line", i + 1));
    }
    std::string head = WithoutTrailingBlanks(text.substr(0, *command_end));
    std::string tail = text.substr(*command_end);
    if (is_linux) {
      close_entry();
      ++out.entries;
      if (!change.kernel_args.empty()) head += " " + GrubWords(change.kernel_args);
      pending = i;
      pending_device = GrubDevicePrefix(FirstArgument(text, rest));
    } else {
      if (!change.extra_initrd.empty()) {
        std::string device = GrubDevicePrefix(FirstArgument(text, rest));
        head += " " + device + GrubWord(change.extra_initrd);
      }
      pending.reset();
    }
    text = tail.empty() ? head : head + " " + tail;
  }
  close_entry();
  for (auto it = inserts.rbegin(); it != inserts.rend(); ++it) {
    if (lines[it->first].end.empty()) lines[it->first].end = end;
    lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(it->first) + 1, it->second);
  }
  out.text = JoinLines(lines);
  return out;
}

}  // namespace

std::string_view ToString(MenuKind kind) {
  return kind == MenuKind::kGrub ? "grub" : "syslinux";
}

std::optional<MenuKind> MenuKindOf(std::string_view path) {
  std::string name = ToLower(path.substr(path.rfind('/') + 1));
  if (name == "isolinux.cfg" || name == "syslinux.cfg") return MenuKind::kSyslinux;
  if (name == "grub.cfg") return MenuKind::kGrub;
  return std::nullopt;
}

Result<void> CheckKernelArgs(std::string_view args) {
  for (size_t i = 0; i < args.size(); ++i) {
    auto c = static_cast<unsigned char>(args[i]);
    if (c == '\t' || c == ' ') continue;
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\'' || c == '\\') {
      return MakeError(fmt::format(
          "kernel arguments: character {} at offset {} cannot go into a boot menu (printable "
          "ASCII without quotes or backslashes only)",
          c >= 0x21 && c <= 0x7e ? fmt::format("'{}'", static_cast<char>(c))
                                 : fmt::format("0x{:02x}", c),
          i));
    }
  }
  return {};
}

Result<RewrittenMenu> RewriteMenu(MenuKind kind, std::span<const uint8_t> text,
                                  const MenuChange& change) {
  if (text.size() > kMaxMenuBytes) {
    return MakeError(fmt::format("{} bytes: larger than a boot menu can be ({} bytes)", text.size(),
                                 kMaxMenuBytes));
  }
  for (size_t i = 0; i < text.size(); ++i) {
    uint8_t c = text[i];
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') || c == 0x7f) {
      return MakeError(fmt::format("not a text file (byte 0x{:02x} at offset {})", c, i));
    }
  }
  if (auto ok = CheckKernelArgs(change.kernel_args); !ok) return ok.error();
  if (auto ok = CheckKernelArgs(change.extra_initrd); !ok) return ok.error();
  std::string_view s(reinterpret_cast<const char*>(text.data()), text.size());
  return kind == MenuKind::kGrub ? RewriteGrub(SplitLines(s), change)
                                 : RewriteSyslinux(SplitLines(s), change);
}

}  // namespace isoboot::iso
