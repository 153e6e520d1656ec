#!/usr/bin/env bash
# Installs the peers the benchmarks compare pxeflow against (run by `npm run bench` before it starts; as root):
#   tftpd-hpa, atftpd  TFTP servers        nginx-light  HTTP server        wrk  HTTP load generator
#   gcc, libc6-dev     to build the DHCP storm client (bench/dhcp/storm.c)
# atftpd and tftpd-hpa conflict as Debian packages (installing one removes the other), so atftpd's binary is
# unpacked from its .deb into .tools/bench/atftpd (its libraries, libpcre2-8-0 and libwrap0, come from apt).
# dnsmasq (DHCP and TFTP peer), atftp (TFTP client), xorriso, ipmi_sim … come from scripts/setup.sh.
# Installing these packages must not leave system services on ports 69/80: while apt runs, a policy-rc.d that
# forbids service starts is put in place (only if the machine has none), and any service the install still
# started is stopped by its exact unit name. The benchmarks start each server themselves on test addresses.
# Packages are installed one by one: one that cannot be installed is reported and its benchmark is skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
say() { printf 'setup-bench: %s\n' "$*" >&2; }

bash scripts/setup.sh || exit 1

peers=(wrk tftpd-hpa nginx-light libwrap0 libpcre2-8-0 gcc libc6-dev)
atftpd_dir=$PWD/.tools/bench/atftpd
missing=()
for p in "${peers[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
((${#missing[@]})) || [[ ! -x $atftpd_dir/usr/sbin/atftpd ]] || exit 0
if [[ $(id -u) -ne 0 ]]; then
  say "missing bench peers: ${missing[*]} — run as root"
  exit 1
fi

policy=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\n# pxeflow setup-bench: no service starts while bench peers install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=1
fi
cleanup() { ((own_policy)) && rm -f "$policy"; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends "$@"; }
apt_get update >/dev/null 2>&1 || say "apt-get update failed (continuing with the lists there are)"
for p in "${missing[@]}"; do
  say "installing $p"
  if ! apt_get install "$p" >/dev/null; then
    say "could not install $p: its comparison will be skipped"
    continue
  fi
  # a service started anyway (a machine whose init ignores policy-rc.d): stop exactly that unit
  case "$p" in
    tftpd-hpa) unit=tftpd-hpa ;;
    nginx-light) unit=nginx ;;
    *) unit= ;;
  esac
  if [[ -n $unit ]] && command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
    say "stopping and disabling the $unit service the package started"
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  fi
done
if [[ ! -x $atftpd_dir/usr/sbin/atftpd ]]; then
  say "unpacking atftpd from its .deb into .tools/bench/atftpd"
  tmp=$(mktemp -d)
  if (cd "$tmp" && apt-get download atftpd >/dev/null 2>&1) && mkdir -p "$atftpd_dir" &&
    dpkg-deb -x "$tmp"/atftpd_*.deb "$atftpd_dir"; then
    :
  else
    say "could not unpack atftpd: its comparison will be skipped"
  fi
  rm -rf "$tmp"
fi
exit 0
