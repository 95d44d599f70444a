#!/usr/bin/env bash
# The man pages (docs/man/*.scd) and the bash completion
# (contrib/bash-completion/isoboot) checked against the CLI itself, so that
# an option added to (or removed from) a command without its documentation
# fails here. For every command and subcommand that `isoboot ... --help`
# lists:
#   - its options, in --help's order, are the option items of its page's
#     OPTIONS section (isoboot(1), isoboot-serve(1), isoboot-bmc(1)) or of
#     the page's subsection "isoboot CMD SUB" (isoboot-iso(1) ...), with the
#     same short and long names, every choice and the default in the item's
#     text, and no item for an option the CLI does not have;
#   - every subcommand (and bmc action) has a SYNOPSIS line of its own;
#   - the completion offers exactly its options, subcommands and choices.
# Every page must convert with scdoc and render with man and groff without
# a warning. Needs scdoc, man-db and groff (scripts/deps.sh build) and
# xorriso (test); no network, a few seconds.
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
completion=$src/contrib/bash-completion/isoboot
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp man

for tool in scdoc man groff; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/deps.sh build)"
done
export LC_ALL=C.UTF-8 MANWIDTH=80 MANPAGER=cat PAGER=cat
errors=0 checked_options=0 checked_commands=0
error() {
  echo "FAIL: $*" >&2
  errors=$((errors + 1))
}

# --- Render every page: no message from scdoc, man or groff.
pages=()
for scd in "$src"/docs/man/*.scd; do
  page=$(basename "$scd" .scd)  # isoboot-serve.1
  pages+=("$page")
  scdoc <"$scd" >"$tmp/$page" 2>"$tmp/$page.scdoc" || error "$page: scdoc failed: $(cat "$tmp/$page.scdoc")"
  [[ -s $tmp/$page.scdoc ]] && error "$page: scdoc says: $(cat "$tmp/$page.scdoc")"
  # The text the checks read, without hyphenation so that no word is split
  # (which makes lines harder to break: no warning with it, none without).
  MANROFFOPT=-rHY=0 man --warnings -l - <"$tmp/$page" >"$tmp/$page.txt" 2>"$tmp/$page.man" ||
    error "$page: man failed"
  [[ -s $tmp/$page.man ]] && error "$page: man --warnings says: $(head -5 "$tmp/$page.man")"
  groff -man -ww -z "$tmp/$page" 2>"$tmp/$page.groff" || error "$page: groff failed"
  [[ -s $tmp/$page.groff ]] && error "$page: groff -ww says: $(head -5 "$tmp/$page.groff")"
done
((${#pages[@]} >= 7)) || fail "only ${#pages[@]} pages in docs/man"

# items FILE KIND NAME: the items of a section (KIND section, NAME "OPTIONS")
# or subsection (KIND subsection, NAME "isoboot iso ls") of a rendered page,
# one "TERM<tab>TEXT" line each. An item is a term at indent 7, after an
# empty line, whose text follows at indent 11; the text's lines are joined
# (a line that ends in a hyphen was broken at that hyphen).
items() {
  awk -v kind="$2" -v name="$3" '
    function indent(s) { return match(s, /[^ ]/) ? RSTART - 1 : -1 }
    {
      i = indent($0)
      if (!inside) {
        if ((kind == "section" && $0 == name) || (kind == "subsection" && $0 == "   " name)) inside = 1
        next
      }
      if (i >= 0 && i <= (kind == "section" ? 0 : 3)) exit
      n++; line[n] = $0
    }
    END {
      for (k = 1; k <= n; k++) {
        if (indent(line[k]) != 7 || (k > 1 && line[k - 1] != "") || indent(line[k + 1]) < 11) continue
        term = substr(line[k], 8); text = ""
        for (j = k + 1; j <= n && indent(line[j]) >= 11; j++) {
          t = substr(line[j], indent(line[j]) + 1)
          text = (text ~ /[A-Za-z0-9]-$/) ? text t : (text == "" ? t : text " " t)
        }
        print term "\t" text
      }
    }' "$1"
}

# synopsis FILE: the SYNOPSIS lines of a rendered page, without indent.
synopsis() {
  awk '/^SYNOPSIS$/ { s = 1; next } s && /^[^ ]/ { exit } s && /^       [^ ]/ { print substr($0, 8) }' "$1"
}

# complete WORD...: what the completion offers for the words (the last one
# being completed), one a line, sorted; run in a bash of its own.
complete_words() {
  bash --norc --noprofile -c '
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
    _isoboot
    printf "%s\n" "${COMPREPLY[@]}"' _ "$completion" "$@" | sed '/^$/d' | sort
}

sorted() { printf '%s\n' "$@" | sed '/^$/d' | sort; }

# expect_completion "EXPECTED WORDS" WORD...: the completion offers exactly these.
expect_completion() {
  local want=$1 got
  shift
  # shellcheck disable=SC2086
  want=$(sorted $want)
  got=$(complete_words "$@")
  [[ $got == "$want" ]] || error "completion of '$*': got [${got//$'\n'/ }], want [${want//$'\n'/ }]"
}

# --- Every command path, from the CLI's own help.
check_command() {
  local path=$1 help page kind block line spec names rest choices default sub
  local -a words=() opts=() subs=() actions=()
  [[ -n $path ]] && read -ra words <<<"$path"
  help=$("$bin" "${words[@]}" --help) || fail "isoboot $path --help failed"
  local section=
  while IFS= read -r line; do
    case $line in
      Positionals:) section=positionals; continue ;;
      Options:) section=options; continue ;;
      Subcommands:) section=subcommands; continue ;;
      '   '*) continue ;;  # a description on a line of its own
    esac
    [[ $line == '  '[^' ']* ]] || continue
    spec=${line#  }
    spec=${spec%%  *}
    case $section in
      options)
        names=${spec%% *}
        rest=${spec#"$names"}
        choices='' default=
        [[ $rest =~ \{([^}]*)\} ]] && choices=${BASH_REMATCH[1]//,/ }
        [[ $rest =~ =([^=\ ]+)$ ]] && default=${BASH_REMATCH[1]}
        opts+=("$names|$choices|$default")
        ;;
      subcommands) subs+=("${spec%% *}") ;;
      positionals)
        # A positional with choices, e.g. bmc's action: each is a command
        # of its own in the page.
        [[ $spec =~ \{([^}]*)\} ]] && read -ra actions <<<"${BASH_REMATCH[1]//,/ }"
        ;;
    esac
  done <<<"$help"

  checked_commands=$((checked_commands + 1))
  # The page and the block that hold this command's options.
  if [[ -z $path ]]; then
    page=isoboot.1
  else
    page=isoboot-${words[0]}.1
  fi
  [[ -f $tmp/$page.txt ]] || { error "isoboot $path: no page $page"; return; }
  if ((${#words[@]} == 2)); then
    kind=subsection block="isoboot $path"
  else
    kind=section block=OPTIONS
  fi
  # A subcommand has its subsection; a command with options its OPTIONS.
  local heading=$block
  [[ $kind == subsection ]] && heading="   $block"
  if [[ $kind == subsection ]] || ((${#opts[@]} > 1)) || [[ -z $path ]]; then
    grep -qxF -- "$heading" "$tmp/$page.txt" || error "$page: isoboot $path: no $kind \"$block\""
  fi
  # The items, as arrays: the option names a term starts with ("-i,
  # --interface", empty for a term such as IMAGE), and the item's text.
  local -a item_names=() item_texts=()
  local term text
  while IFS=$'\t' read -r term text; do
    [[ -n $term ]] || continue
    item_names+=("$(awk '{ for (k = 1; k <= NF && $k ~ /^-/; k++) printf "%s%s", (k > 1 ? " " : ""), $k }' <<<"$term")")
    item_texts+=("$text")
  done < <(items "$tmp/$page.txt" "$kind" "$block")

  # Each option of --help (but --help itself, in isoboot(1) only) is an
  # item, in --help's order, with its choices and its default.
  local opt long want last=-1 at k c
  local -a known=()
  for opt in "${opts[@]}"; do
    IFS='|' read -r names choices default <<<"$opt"
    known+=("${names//,/ }")
    [[ $names == -h,--help && -n $path ]] && continue
    want=${names//,/, }  # as the page writes it: "-i, --interface"
    at=
    for k in "${!item_names[@]}"; do
      [[ ${item_names[k]} == "$want" ]] && { at=$k; break; }
    done
    if [[ -z $at ]]; then
      error "$page: isoboot $path: option $want is not documented (no item \"$want ...\" in $block)"
      continue
    fi
    ((at > last)) || error "$page: isoboot $path: option $want is out of --help's order in $block"
    last=$at
    checked_options=$((checked_options + 1))
    text=${item_texts[at]}
    for c in $choices; do
      [[ $text =~ (^|[^[:alnum:]_])"$c"($|[^[:alnum:]_]) ]] ||
        error "$page: isoboot $path $want: choice '$c' is not described"
    done
    [[ -z $default || $text == *"$default"* ]] ||
      error "$page: isoboot $path $want: default '$default' is not given"
  done
  # No item documents an option the CLI does not have.
  for names in "${item_names[@]}"; do
    for name in ${names//,/ }; do
      [[ " ${known[*]} " == *" $name "* ]] ||
        error "$page: isoboot $path: documents $name, which --help does not list"
    done
  done

  # Subcommands and actions: a SYNOPSIS line each; in isoboot(1), an item
  # of COMMANDS.
  local syn
  syn=$(synopsis "$tmp/$page.txt")
  for sub in "${subs[@]}" "${actions[@]}"; do
    if [[ -z $path ]]; then
      items "$tmp/$page.txt" section COMMANDS | cut -f1 | grep -qx -- "$sub" ||
        error "$page: command $sub is not in COMMANDS"
      [[ -f $tmp/isoboot-$sub.1 ]] || error "no page isoboot-$sub(1) for command $sub"
    else
      grep -q "^isoboot $path $sub\( \|$\)" <<<"$syn" ||
        error "$page: no SYNOPSIS line for isoboot $path $sub"
    fi
  done

  # The completion: every option, every subcommand, every choice.
  local all=
  for opt in "${opts[@]}"; do
    IFS='|' read -r names choices default <<<"$opt"
    all+=" ${names//,/ }"
    [[ -z $choices ]] && continue
    for long in ${names//,/ }; do :; done  # the last name: the long one
    expect_completion "$choices" isoboot "${words[@]}" "$long" ''
  done
  expect_completion "$all" isoboot "${words[@]}" -
  if ((${#subs[@]})); then
    expect_completion "${subs[*]}" isoboot "${words[@]}" ''
  fi
  if ((${#actions[@]})); then
    expect_completion "${actions[*]}" isoboot "${words[@]}" ''
  fi

  for sub in "${subs[@]}"; do
    check_command "${path:+$path }$sub"
  done
}
check_command ""

# --- The completion in the cases people type.
expect_completion "serve" isoboot se
expect_completion "--dhcp --dhcp-range" isoboot serve --dh
expect_completion "proxy full off" isoboot serve --dhcp ''
expect_completion "full" isoboot serve --dhcp = f         # --dhcp=f, split at "="
expect_completion "backup restore key" isoboot overlay ''
expect_completion "serve" isoboot --log-level debug se
expect_completion "$(ls /sys/class/net)" isoboot serve --interface ''
expect_completion "$(ls /sys/class/net)" isoboot aoe discover -i ''
"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null 2>"$tmp/iso.log" ||
  fail "make-layout-iso.sh: $(cat "$tmp/iso.log")"
touch "$tmp/lab.toml"
expect_completion "$tmp/live.iso" isoboot serve "$tmp/li"
expect_completion "$tmp/lab.toml" isoboot serve --config "$tmp/la"
expect_completion "$tmp/live.iso" isoboot serve --node 52 : 54 : 00 : 12 : 34 : 56 = x "$tmp/li"
expect_completion "/boot/x86_64/loader/initrd" "$bin" iso cat "$tmp/live.iso" /boot/x86_64/loader/in

((errors == 0)) || fail "$errors problems in the man pages or the completion"
echo "man pages and completion agree with --help: $checked_options options of $checked_commands commands in ${#pages[@]} pages"
