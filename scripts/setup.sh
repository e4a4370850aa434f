#!/usr/bin/env bash
# One idempotent set-up for a fresh machine: Debian packages, the Go-built tools, npm packages and the build.
# Each step checks first and does nothing when its result is already there, so a second run takes seconds.
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

log() { printf 'setup: %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------------------------
apt_packages=(openssh-server postgresql mariadb-server iproute2 procps chromium)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # The packages' maintainer scripts would start system-wide servers; the project starts its own, so forbid it.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy" && created_policy=1
  fi
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  [ "$created_policy" -eq 0 ] || $sudo rm -f "$policy"
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
  mkdir -p "$dest.partial"
  (cd "$repo/tools/$dir" && go build -trimpath -ldflags "$ldflags" -o "$dest.partial/" "${need[@]}")
  mkdir -p "$dest"
  mv "$dest.partial"/* "$dest/" && rmdir "$dest.partial"
  for spec in "${specs[@]}"; do
    IFS=: read -r name _ <<<"$spec"
    [ -L "$link_dir/$name" ] && [ -e "$link_dir/$name" ] || link "$name" "$dest/$name"
  done
}

tool govmomi github.com/vmware/govmomi \
  vcsim:github.com/vmware/govmomi/vcsim: \
  govc:github.com/vmware/govmomi/govc:version \
  -- "-X github.com/vmware/govmomi/govc/flags.BuildVersion=$(module_version govmomi github.com/vmware/govmomi)"
tool restic github.com/restic/restic \
  restic:github.com/restic/restic/cmd/restic:version \
  rest-server:github.com/restic/rest-server/cmd/rest-server:--version
pulumi_version=$(module_version pulumi github.com/pulumi/pulumi/pkg/v3)
tool pulumi github.com/pulumi/pulumi/pkg/v3 \
  pulumi:github.com/pulumi/pulumi/pkg/v3/cmd/pulumi:version \
  -- "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$pulumi_version"

# The Node language host is its own Go module since Pulumi 3.69, and the proxy serves no version of that module;
# 3.68.0 is the newest release whose sdk/v3 module still contains it. It speaks the same gRPC protocol to the
# newer engine (tested by test/integration/pulumi-cli.test.ts). It lives in a folder of its own, off dcctl's PATH:
# where the engine finds a Node language host it runs policy packs through it, and 3.68 cannot (no RunPlugin);
# dcctl's inline programs need no language host at all. `pulumi up` by hand needs it on PATH (see README).
langhost_version=$(module_version pulumi-language-nodejs github.com/pulumi/pulumi/sdk/v3)
rm -f "$bin/pulumi-language-nodejs"
link_dir="$cache/langhost" tool pulumi-language-nodejs github.com/pulumi/pulumi/sdk/v3 \
  pulumi-language-nodejs:github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs: \
  -- "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$langhost_version"

# dcctl's vSphere provider plugin (provider/vsphere, Go on govmomi): the real provider's tokens and config. Cached
# under a hash of its sources and schema, so every checkout with the same sources shares one build; linked into the
# checkout's provider/vsphere/bin, which the stacks' Pulumi.yaml names as the `vsphere` plugin's folder.
vsphere_src="$repo/provider/vsphere"
mkdir -p "$vsphere_src/bin"   # Pulumi.yaml names this folder; the engine refuses one that does not exist
vsphere_key=$(cd "$vsphere_src" && ls go.mod go.sum schema.json *.go | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
vsphere_dest="$cache/tools/vsphere-provider-$vsphere_key/bin"
if [ ! -x "$vsphere_dest/pulumi-resource-vsphere" ]; then
  log "building pulumi-resource-vsphere ($vsphere_key; cached in $vsphere_dest)"
  mkdir -p "$vsphere_dest.partial"
  (cd "$vsphere_src" && go build -trimpath -o "$vsphere_dest.partial/pulumi-resource-vsphere" .)
  mkdir -p "$vsphere_dest"
  mv "$vsphere_dest.partial/pulumi-resource-vsphere" "$vsphere_dest/" && rmdir "$vsphere_dest.partial"
fi
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

# --- npm packages and the build ------------------------------------------------------------------------
cd "$repo"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# --- @pulumi/vsphere, generated from our provider's schema ----------------------------------------------------
# package.json names @pulumi/vsphere as an optional dependency: where the registry serves it, npm ci installs the
# real package and this step leaves it alone. Here the registry does not, so npm ci skips it and this step puts in
# its place the SDK that Pulumi's Node.js code generator (tools/vsphere-sdkgen) writes from provider/vsphere/schema.json,
# compiled with tsc. Both the generator and the compiled package are cached under $cache, keyed by what they are
# made from; the checkout gets a copy (not a link: the package must resolve @pulumi/pulumi from this node_modules).
sdkgen_key=$(cat "$repo/tools/vsphere-sdkgen/go.mod" "$repo/tools/vsphere-sdkgen/go.sum" "$repo/tools/vsphere-sdkgen/main.go" \
  | sha256sum | cut -c1-12)
sdkgen="$cache/tools/vsphere-sdkgen-$pulumi_version-$sdkgen_key/bin/vsphere-sdkgen"
sdk_key=$( { printf '%s\n' "$sdkgen_key" "$(node -p 'require("typescript/package.json").version')"
  cat "$repo/provider/vsphere/schema.json"; } | sha256sum | cut -c1-16)
sdk_dir="$cache/sdk/vsphere-$sdk_key"
sdk_dest="$repo/node_modules/@pulumi/vsphere"
if [ -e "$sdk_dest/package.json" ] && [ ! -e "$sdk_dest/.dcctl-sdk" ]; then
  :  # the registry's @pulumi/vsphere, installed by npm ci
elif [ "$(cat "$sdk_dest/.dcctl-sdk" 2>/dev/null || true)" != "$sdk_key" ]; then
  if [ ! -e "$sdk_dir/package/.dcctl-sdk" ]; then
    if [ ! -x "$sdkgen" ]; then
      log "building vsphere-sdkgen at Pulumi $pulumi_version (first time only)"
      (cd "$repo/tools/vsphere-sdkgen" && go build -trimpath -o "$sdkgen.partial.$$" .)
      mv "$sdkgen.partial.$$" "$sdkgen"
    fi
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

npx tsc -p tsconfig.json
# Every schema's validator compiled here, once, instead of by every dcctl start (util/validator.ts).
node dist/scripts/build-validators.js

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
