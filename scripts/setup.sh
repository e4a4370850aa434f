#!/usr/bin/env bash
# One idempotent set-up for a fresh machine: Debian packages, the Go-built tools, npm packages and the build.
# Each step checks first and does nothing when its result is already there, so a second run takes seconds.
# The steps that do not need each other run side by side (see "Steps side by side" below): on two cores a cold
# set-up took 11.5 min one after the other.
#
# Tools are built from Go modules into $DCCTL_CACHE/tools/<name>-<version>/bin (outside the checkout, shared
# by every clone) and linked into $DCCTL_CACHE/bin, which dcctl puts first on PATH for everything it runs.
# A tool is not built when DCCTL_<NAME> (for example DCCTL_RESTIC=/usr/bin/restic) names an existing binary,
# or when the same version is already on PATH.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${DCCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dcctl}
bin="$cache/bin"
mkdir -p "$bin"
export GOFLAGS="${GOFLAGS:-} -mod=mod"
# Linked without symbol table and DWARF (-s -w): nobody debugs these binaries here (a panic still names file and
# line), and it cut the plugin's link by about 30 % (user time, warm cache: 7.8 s to 4.8 s).
go_ldflags="-s -w"

# Progress lines go to set-up's own stderr (fd 3), also from a step running in the background with its output in a log.
exec 3>&2
log() { printf 'setup: %s\n' "$*" >&3; }

# --- Steps side by side ------------------------------------------------------------------------------------
# A single `go build` keeps two cores busy only part of the time (loading modules, linking, the end of a dependency
# chain), apt and npm mostly wait on the network and the disk: so independent steps run at once, each in the
# background with its output in a log of its own. A step that fails fails set-up, and its output is shown then.
# Each step is its own process group (job control), so that set-up stopped or failing stops what it started.
set -m
steps_dir=$(mktemp -d "${TMPDIR:-/tmp}/dcctl-setup.XXXXXX")
step_names=()
step_pids=()

# in_background NAME COMMAND...: runs COMMAND (a function or a program) in a subshell, its output into NAME's log.
in_background() {
  local name=$1
  shift
  ( "$@" ) </dev/null >"$steps_dir/$name.log" 2>&1 &
  step_names+=("$name")
  step_pids+=($!)
}

# wait_background: waits for every step started; shows the output of each that failed, then fails set-up.
wait_background() {
  local i failed=()
  for i in "${!step_pids[@]}"; do
    wait "${step_pids[$i]}" || failed+=("${step_names[$i]}")
  done
  if [ ${#failed[@]} -eq 0 ]; then
    step_names=()
    step_pids=()
    return 0
  fi
  for name in "${failed[@]}"; do
    log "$name failed; its output:"
    cat "$steps_dir/$name.log" >&2
  done
  log "set-up failed: ${failed[*]}"
  exit 1
}

# On the way out, whatever is left of the steps (all of them when set-up is stopped or a foreground step failed).
stop_background() {
  local pid
  # Set-up is ending: what it still writes to stderr is bash's "Terminated" line for each step it stops.
  exec 2>/dev/null
  for pid in "${step_pids[@]}"; do kill -TERM -- "-$pid" || true; done
  wait || true
  rm -rf "$steps_dir"
}
trap stop_background EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Debian packages -------------------------------------------------------------------------------------
# systemd: systemd-analyze, which `backup schedule --emit systemd` and its test ask about the timers' calendars.
# barman: the point-in-time archive of PostgreSQL (`dcctl pitr`), kept at each site's management host.
# mariadb-backup: MariaDB's base backups for that archive (mariadb-backup on the database host, mbstream here).
# rsyslog, rsyslog-gnutls: the SOC collector the feed's tests send to (syslog over TLS, RFC 5425); never started here.
apt_packages=(openssh-server postgresql mariadb-server iproute2 procps chromium systemd barman mariadb-backup rsyslog rsyslog-gnutls)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
install_debian_packages() {
  # The packages' maintainer scripts would start system-wide servers; the project starts its own, so forbid it.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy" && created_policy=1
  fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@"
  [ "$created_policy" -eq 0 ] || $sudo rm -f "$policy"
}
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # Asked here, in the foreground, so that the background step never waits on a password prompt.
  [ -z "$sudo" ] || sudo -v
  # Nothing built below needs these packages (they are the servers the tests and the lab run), so they install
  # beside the builds.
  in_background debian-packages install_debian_packages "${missing[@]}"
fi

# --- Go-built tools ----------------------------------------------------------------------------------------
module_version() { (cd "$repo/tools/$1" && go list -m -f '{{.Version}}' "$2"); }

# link NAME PATH: make $link_dir/NAME (by default $bin/NAME) point at PATH.
link_dir=$bin
link() { mkdir -p "$link_dir" && ln -sfn "$2" "$link_dir/$1"; }

# on_path_with_version NAME VERSION ARGS...: the NAME on PATH (not ours) whose version output mentions VERSION.
on_path_with_version() {
  local name=$1 want=${2#v} found
  shift 2
  found=$(PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$bin" | paste -sd:) command -v "$name" || true)
  [ -n "$found" ] && "$found" "$@" 2>&1 | grep -qF "$want" && printf '%s\n' "$found"
}

# go_prepare DIR LIST_ARGS...: before a first build in the module folder DIR, the modules its packages need are
# downloaded (network and disk, while another step compiles) and Go's standard library is compiled, once for every
# step: with an empty build cache, builds started together each compiled it at the same time (seen: four copies of
# crypto/* and net/http at once), and the cache is shared across module folders (checked: a std package built in
# tools/pulumi is not compiled again in tools/restic). The first step to get the lock compiles it while the others
# download; after it, `go build std` takes a second. A step with nothing to build does neither.
go_prepare() {
  local dir=$1
  shift
  (cd "$dir" && go list -deps "$@" >/dev/null)
  flock "$steps_dir/std.lock" bash -c 'cd "$1" && go build -trimpath std' _ "$dir"
}

# tool MODULE_DIR MODULE NAME:PACKAGE:VERSION_ARGS... -- LDFLAGS
tool() {
  local dir=$1 module=$2; shift 2
  local specs=() ldflags=""
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do specs+=("$1"); shift; done
  [ $# -gt 0 ] && { shift; ldflags="$*"; }
  local version; version=$(module_version "$dir" "$module")
  local dest="$cache/tools/$dir-$version/bin" need=()
  for spec in "${specs[@]}"; do
    IFS=: read -r name pkg vargs <<<"$spec"
    local envvar="DCCTL_$(printf '%s' "$name" | tr 'a-z-' 'A-Z_')"
    if [ -n "${!envvar:-}" ] && [ -x "${!envvar}" ]; then link "$name" "${!envvar}"; continue; fi
    if [ -x "$dest/$name" ]; then link "$name" "$dest/$name"; continue; fi
    local found=""
    [ -n "$vargs" ] && found=$(on_path_with_version "$name" "$version" $vargs || true)
    if [ -n "$found" ]; then link "$name" "$found"; continue; fi
    need+=("$pkg")
  done
  [ ${#need[@]} -gt 0 ] || return 0
  log "building ${need[*]} at $version (first time only; cached in $dest)"
  go_prepare "$repo/tools/$dir" "${need[@]}"
  mkdir -p "$dest.partial"
  (cd "$repo/tools/$dir" && go build -trimpath -ldflags "$go_ldflags $ldflags" -o "$dest.partial/" "${need[@]}")
  mkdir -p "$dest"
  mv "$dest.partial"/* "$dest/" && rmdir "$dest.partial"
  for spec in "${specs[@]}"; do
    IFS=: read -r name _ <<<"$spec"
    [ -L "$link_dir/$name" ] && [ -e "$link_dir/$name" ] || link "$name" "$dest/$name"
  done
}

# The builds, side by side. Those that compile the same packages (the Pulumi SDK, govmomi) run one after the other
# instead, so that the second finds them in Go's build cache rather than compiling them again at the same time:
# pulumi, then the SDK generator and the vSphere plugin (govmomi's tools are done by then).
build_govmomi() {
  tool govmomi github.com/vmware/govmomi \
    vcsim:github.com/vmware/govmomi/vcsim: \
    govc:github.com/vmware/govmomi/govc:version \
    -- "-X github.com/vmware/govmomi/govc/flags.BuildVersion=$(module_version govmomi github.com/vmware/govmomi)"
}
build_restic() {
  tool restic github.com/restic/restic \
    restic:github.com/restic/restic/cmd/restic:version \
    rest-server:github.com/restic/rest-server/cmd/rest-server:--version
}
# The same restic built with its `debug` tag, linked as restic-throwaway-keys, for one thing only: `init
# --insecure-kdf` of repositories whose key protects nothing (the lab's, the tests'). Every other command on them runs
# the restic above, and opens their key in milliseconds: a key made by `restic init` costs about 0.6 s of CPU at
# every restic command, which was most of the CPU the tests spent. Built after the release build, from its cache.
build_restic_throwaway_keys() {
  local version; version=$(module_version restic github.com/restic/restic)
  local dest="$cache/tools/restic-$version-debug/bin"
  if [ ! -x "$dest/restic" ]; then
    log "building restic with its debug tag at $version (first time only; cached in $dest)"
    go_prepare "$repo/tools/restic" -tags debug github.com/restic/restic/cmd/restic
    mkdir -p "$dest.partial"
    (cd "$repo/tools/restic" && go build -trimpath -tags debug -ldflags "$go_ldflags" -o "$dest.partial/" github.com/restic/restic/cmd/restic)
    mkdir -p "$dest"
    mv "$dest.partial/restic" "$dest/restic" && rmdir "$dest.partial"
  fi
  link restic-throwaway-keys "$dest/restic"
}
build_restics() {
  build_restic
  build_restic_throwaway_keys
}
pulumi_version=$(module_version pulumi github.com/pulumi/pulumi/pkg/v3)
build_pulumi() {
  tool pulumi github.com/pulumi/pulumi/pkg/v3 \
    pulumi:github.com/pulumi/pulumi/pkg/v3/cmd/pulumi:version \
    -- "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$pulumi_version"
}

# The Node language host is its own Go module since Pulumi 3.69, and the proxy serves no version of that module;
# 3.68.0 is the newest release whose sdk/v3 module still contains it. It speaks the same gRPC protocol to the
# newer engine (tested by test/integration/pulumi-cli.test.ts). It lives in a folder of its own, off dcctl's PATH:
# where the engine finds a Node language host it runs policy packs through it, and 3.68 cannot (no RunPlugin);
# dcctl's inline programs need no language host at all. `pulumi up` by hand needs it on PATH (see README).
rm -f "$bin/pulumi-language-nodejs"
build_langhost() {
  local langhost_version
  langhost_version=$(module_version pulumi-language-nodejs github.com/pulumi/pulumi/sdk/v3)
  link_dir="$cache/langhost"
  tool pulumi-language-nodejs github.com/pulumi/pulumi/sdk/v3 \
    pulumi-language-nodejs:github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs: \
    -- "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$langhost_version"
}

# dcctl's vSphere provider plugin (provider/vsphere, Go on govmomi): the real provider's tokens and config. Cached
# under a hash of its sources and schema (scripts/vsphere-provider-key.sh), so every checkout with the same sources
# shares one build; linked into the checkout's provider/vsphere/bin, which the stacks' Pulumi.yaml names as the
# `vsphere` plugin's folder. Its Go tests are compiled here too (`go test -c`, same key), and
# test/integration/vsphere-plugin.test.ts runs that binary: compiled there, cold, on a busy machine, they ran past
# the test's limit.
vsphere_src="$repo/provider/vsphere"
mkdir -p "$vsphere_src/bin"   # Pulumi.yaml names this folder; the engine refuses one that does not exist
vsphere_key=$(bash "$repo/scripts/vsphere-provider-key.sh")
vsphere_dest="$cache/tools/vsphere-provider-$vsphere_key/bin"
vsphere_test="$cache/tools/vsphere-provider-$vsphere_key/test/pulumi-resource-vsphere.test"
build_vsphere() {
  if [ ! -x "$vsphere_dest/pulumi-resource-vsphere" ]; then
    log "building pulumi-resource-vsphere ($vsphere_key; cached in $vsphere_dest)"
    go_prepare "$vsphere_src" -test .
    mkdir -p "$vsphere_dest.partial"
    (cd "$vsphere_src" && go build -trimpath -ldflags "$go_ldflags" -o "$vsphere_dest.partial/pulumi-resource-vsphere" .)
    mkdir -p "$vsphere_dest"
    mv "$vsphere_dest.partial/pulumi-resource-vsphere" "$vsphere_dest/" && rmdir "$vsphere_dest.partial"
  fi
  if [ ! -x "$vsphere_test" ]; then
    log "compiling provider/vsphere's Go tests ($vsphere_key)"
    go_prepare "$vsphere_src" -test .
    mkdir -p "$(dirname "$vsphere_test")"
    (cd "$vsphere_src" && go test -c -trimpath -ldflags "$go_ldflags" -o "$vsphere_test.partial.$$" .)
    mv "$vsphere_test.partial.$$" "$vsphere_test"
  fi
}

# @pulumi/vsphere's generator (see below), built here with the other Go tools.
sdkgen_key=$(cat "$repo/tools/vsphere-sdkgen/go.mod" "$repo/tools/vsphere-sdkgen/go.sum" "$repo/tools/vsphere-sdkgen/main.go" \
  | sha256sum | cut -c1-12)
sdkgen="$cache/tools/vsphere-sdkgen-$pulumi_version-$sdkgen_key/bin/vsphere-sdkgen"
build_sdkgen() {
  [ ! -x "$sdkgen" ] || return 0
  log "building vsphere-sdkgen at Pulumi $pulumi_version (first time only)"
  go_prepare "$repo/tools/vsphere-sdkgen" .
  mkdir -p "$(dirname "$sdkgen")"
  (cd "$repo/tools/vsphere-sdkgen" && go build -trimpath -ldflags "$go_ldflags" -o "$sdkgen.partial.$$" .)
  mv "$sdkgen.partial.$$" "$sdkgen"
}

# --- npm packages, @pulumi/vsphere and dcctl's build ---------------------------------------------------------
cd "$repo"
npm_needed=0
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm_needed=1; fi
install_npm_packages() {
  log "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
}

# --- @pulumi/vsphere, generated from our provider's schema ----------------------------------------------------
# package.json names @pulumi/vsphere as an optional dependency: where the registry serves it, npm ci installs the
# real package and this step leaves it alone. Here the registry does not, so npm ci skips it and this step puts in
# its place the SDK that Pulumi's Node.js code generator (tools/vsphere-sdkgen) writes from provider/vsphere/schema.json,
# compiled with tsc. Both the generator and the compiled package are cached under $cache, keyed by what they are
# made from; the checkout gets a copy (not a link: the package must resolve @pulumi/pulumi from this node_modules).
generate_vsphere_sdk() {
  local sdk_key sdk_dir sdk_dest work
  sdk_key=$( { printf '%s\n' "$sdkgen_key" "$(node -p 'require("typescript/package.json").version')"
    cat "$repo/provider/vsphere/schema.json"; } | sha256sum | cut -c1-16)
  sdk_dir="$cache/sdk/vsphere-$sdk_key"
  sdk_dest="$repo/node_modules/@pulumi/vsphere"
  if [ -e "$sdk_dest/package.json" ] && [ ! -e "$sdk_dest/.dcctl-sdk" ]; then
    :  # the registry's @pulumi/vsphere, installed by npm ci
  elif [ "$(cat "$sdk_dest/.dcctl-sdk" 2>/dev/null || true)" != "$sdk_key" ]; then
    if [ ! -e "$sdk_dir/package/.dcctl-sdk" ]; then
      log "generating @pulumi/vsphere from provider/vsphere/schema.json (cached in $sdk_dir)"
      work="$sdk_dir.partial.$$"
      rm -rf "$work" && mkdir -p "$work"
      "$sdkgen" -schema "$repo/provider/vsphere/schema.json" -out "$work/src"
      ln -s "$repo/node_modules" "$work/src/node_modules"
      "$repo/node_modules/.bin/tsc" -p "$work/src/tsconfig.json"
      rm "$work/src/node_modules"
      # The package as the registry's is laid out: the compiled files at its root, beside package.json.
      cp -r "$work/src/bin" "$work/package"
      cp "$work/src/package.json" "$work/src/README.md" "$work/package/"
      printf '%s\n' "$sdk_key" >"$work/package/.dcctl-sdk"
      rm -rf "$sdk_dir" && mv "$work" "$sdk_dir"
    fi
    rm -rf "$sdk_dest" && mkdir -p "$(dirname "$sdk_dest")"
    cp -r "$sdk_dir/package" "$sdk_dest.partial.$$" && mv "$sdk_dest.partial.$$" "$sdk_dest"
  fi
}

# dcctl compiled (against @pulumi/vsphere, which stacks/ imports), and every schema's validator compiled here, once,
# instead of by every dcctl start (util/validator.ts).
build_dcctl() {
  npx tsc -p tsconfig.json
  node dist/scripts/build-validators.js
}

# npm ci beside pulumi's build; then the SDK generator and the plugin side by side (both compile much of what pulumi
# compiled); as soon as the generator and the npm packages are there, @pulumi/vsphere and dcctl's own build, while
# the plugin and its tests (and the other steps' Go builds) go on: one after the other at the end, they were the
# last minutes of a cold set-up with one core busy.
# (Called plainly, never in `if` or `||`: set -e, which stops each at its first failure, does not apply there.)
build_pulumi_and_after() {
  local npm_pid=""
  if [ "$npm_needed" -eq 1 ]; then
    install_npm_packages &
    npm_pid=$!
  fi
  build_pulumi
  build_vsphere &
  local vsphere_pid=$!
  build_sdkgen
  [ -z "$npm_pid" ] || wait "$npm_pid"
  generate_vsphere_sdk
  build_dcctl
  wait "$vsphere_pid"
}

in_background govmomi build_govmomi
in_background restic build_restics
in_background langhost build_langhost
in_background pulumi-npm-dcctl build_pulumi_and_after
wait_background
link_dir="$vsphere_src/bin" link pulumi-resource-vsphere "$vsphere_dest/pulumi-resource-vsphere"

# The engine runs Node policy packs through this plugin when no Node language host is installed
# (see README: the language host module is not served here).
# An engine killed outright never stops its analyzer: the preloaded watcher ends it when its parent is gone.
cat > "$bin/parent-watch.mjs" <<'JS'
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 1000).unref();
JS
cat > "$bin/pulumi-analyzer-policy-nodejs.new" <<'SH'
#!/bin/sh
# Started by the Pulumi engine in the policy pack's folder with: ENGINE_ADDRESS PACK_DIR [options].
exec node --import "file://$(dirname "$(readlink -f "$0")")/parent-watch.mjs" \
  "$(node -e "process.stdout.write(require.resolve('@pulumi/pulumi/cmd/run-policy-pack'))")" "$@"
SH
chmod +x "$bin/pulumi-analyzer-policy-nodejs.new"
mv "$bin/pulumi-analyzer-policy-nodejs.new" "$bin/pulumi-analyzer-policy-nodejs"

# --- dcctl on PATH -----------------------------------------------------------------------------------------
# The README and the demo say `dcctl …`: a command on PATH that runs this checkout's build. The checkout whose
# set-up ran last is the one it runs; set-up says so when that changes.
if [ "$(id -u)" = 0 ]; then path_dir=/usr/local/bin; else path_dir="$HOME/.local/bin"; fi
mkdir -p "$path_dir"
if [ "$(readlink "$path_dir/dcctl" 2>/dev/null || true)" != "$repo/bin/dcctl" ]; then
  ln -sfn "$repo/bin/dcctl" "$path_dir/dcctl"
  log "dcctl on PATH: $path_dir/dcctl runs $repo"
fi
case ":$PATH:" in
  *":$path_dir:"*) ;;
  *) log "$path_dir is not on your PATH: export PATH=\"$path_dir:\$PATH\" (or source the lab's env file)" ;;
esac
