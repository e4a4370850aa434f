#!/bin/sh
# Installs this dcctl release, offline: needs only a POSIX shell and coreutils (no network, Node, Go, or HOME).
#
#   ./install.sh [--prefix /opt/dcctl] [--bin-dir /usr/local/bin] [--etc /etc/dcctl] [--state /var/lib/dcctl]
#                [--owner USER[:GROUP]] [--no-completion]
#
# What it changes, and nothing else:
#   PREFIX/releases/VERSION/   this release (a reinstall of the same version replaces it whole)
#   PREFIX/current             -> releases/VERSION, switched in one rename (the previous release stays beside it)
#   PREFIX/install.env         the folders below, kept across upgrades unless given again
#   BIN_DIR/dcctl              -> PREFIX/current/bin/dcctl
#   ETC (0750) and STATE (0750) created when missing, owned by --owner (default root); never changed when present
#   bash and zsh completion linked into /usr/share/bash-completion/completions and /usr/local/share/zsh/site-functions
# Config and state are never touched: an upgrade keeps every journal, ledger and record as it is, and dcctl migrates
# their formats on first use. A release older than the state it finds refuses to run (one line) rather than guess.
set -eu

say() { printf 'install: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

prefix=/opt/dcctl bindir=/usr/local/bin etc="" state="" owner=root completion=1
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a folder"; prefix=$2; shift 2 ;;
    --bin-dir) [ $# -ge 2 ] || die "--bin-dir needs a folder"; bindir=$2; shift 2 ;;
    --etc) [ $# -ge 2 ] || die "--etc needs a folder"; etc=$2; shift 2 ;;
    --state) [ $# -ge 2 ] || die "--state needs a folder"; state=$2; shift 2 ;;
    --owner) [ $# -ge 2 ] || die "--owner needs USER[:GROUP]"; owner=$2; shift 2 ;;
    --no-completion) completion=0; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case $prefix in /*) ;; *) die "--prefix must be an absolute path: $prefix" ;; esac

src=$(cd "$(dirname "$0")" && pwd -P)
[ -r "$src/VERSION" ] && [ -x "$src/bin/dcctl" ] || die "$src is not an unpacked dcctl release"
version=$(cat "$src/VERSION")

# The folders: given now, or as the last install recorded them, or the defaults.
if [ -r "$prefix/install.env" ]; then . "$prefix/install.env"; fi
etc=${etc:-${dcctl_etc:-/etc/dcctl}}
state=${state:-${dcctl_state:-/var/lib/dcctl}}

mkdir -p "$prefix/releases" "$bindir"
dest="$prefix/releases/$version"
if [ "$(cd "$dest" 2>/dev/null && pwd -P)" != "$src" ]; then
  rm -rf "$dest.partial"
  cp -a "$src" "$dest.partial"
  rm -rf "$dest"
  mv "$dest.partial" "$dest"
fi

# Before switching: the new release must be able to read the state that is there (a downgrade may not). Its first
# start migrates an older format, once, and doctor's line says so.
if [ -d "$state" ]; then
  err="$prefix/.state-check.err"
  if ! out=$(DCCTL_STATE_DIR=$state "$dest/bin/dcctl" doctor --only state 2>"$err"); then
    say "$(tail -n 1 "$err")"
    rm -f "$err"
    say "dcctl $version is unpacked in $dest but not made current"
    exit 1
  fi
  rm -f "$err"
  say "$out"
fi

ln -sfn "releases/$version" "$prefix/current.new"
mv -T "$prefix/current.new" "$prefix/current"
printf 'dcctl_etc=%s\ndcctl_state=%s\n' "$etc" "$state" >"$prefix/install.env.new"
mv "$prefix/install.env.new" "$prefix/install.env"
ln -sfn "$prefix/current/bin/dcctl" "$bindir/dcctl"

for dir in "$etc" "$state"; do
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    chmod 0750 "$dir"
    chown "$owner" "$dir"
    say "created $dir (0750, $owner)"
  fi
done

if [ "$completion" = 1 ]; then
  mkdir -p /usr/share/bash-completion/completions /usr/local/share/zsh/site-functions
  ln -sfn "$prefix/current/share/completion/dcctl.bash" /usr/share/bash-completion/completions/dcctl
  ln -sfn "$prefix/current/share/completion/_dcctl" /usr/local/share/zsh/site-functions/_dcctl
fi

say "dcctl $version installed in $dest; $bindir/dcctl; config $etc, state $state"
say "next: write $etc/repositories.yaml, then run: dcctl doctor"
