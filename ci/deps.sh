#!/usr/bin/env bash
# Installs the Debian packages the tests and the lab need, only when something is missing.
# Safe to run repeatedly; needs root (CI runs as root).
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_cmd tshark || need+=(tshark)
have_cmd ip || need+=(iproute2)
have_cmd pkg-config || need+=(pkg-config)
have_cmd ping || need+=(iputils-ping)
have_cmd ethtool || need+=(ethtool)
have_cmd dhcpcd || need+=(dhcpcd-base)
# pshim6 lab: the providers' ingress filters (bridge comes with iproute2, dumpcap and mergecap
# with tshark).
have_cmd nft || [ -x /usr/sbin/nft ] || need+=(nftables)
# DNS ALG tests: a real authoritative server (knotd is in /usr/sbin) and real clients.
have_cmd knotd || [ -x /usr/sbin/knotd ] || need+=(knot)
have_cmd kdig || need+=(knot-dnsutils)
have_cmd dig || need+=(bind9-dnsutils)
# Operator API tests: `promtool check metrics` on /metrics.
have_cmd promtool || need+=(prometheus)
# pshim6 lab `drain`: the operator API's HTTP client inside the proxy's namespace.
have_cmd curl || need+=(curl)
# Route announcement and the multi-proxy lab (issue #9): BIRD 2 on the site routers and the
# proxies; the BGP signal (`pshim6 lab --scenario bgp-withdraw`, configs checked by `bird -p`).
have_cmd bird || [ -x /usr/sbin/bird ] || need+=(bird2)
# DPDK backend (feature `dpdk`): headers and libraries, libclang for bindgen, testpmd.
pkg-config --exists libdpdk 2>/dev/null || need+=(libdpdk-dev)
have_cmd clang || need+=(clang)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need+=(libclang-dev)
have_cmd dpdk-testpmd || need+=(dpdk-dev)
# Shared host bindings (crate etcd-store): the tests start a real etcd; etcd-client's build
# needs protoc.
have_cmd etcd || need+=(etcd-server)
have_cmd etcdctl || need+=(etcd-client)
have_cmd protoc || need+=(protobuf-compiler)
# pktgen kit: `luac5.4 -p` checks the pktgen-dpdk Lua profile (pktgen-dpdk is not in Debian).
have_cmd luac5.4 || need+=(lua5.4)

if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "ci/deps.sh: missing ${need[*]} and not root: install them or run as root" >&2
    exit 1
  fi
  echo "ci/deps.sh: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # wireshark-common asks whether non-root users may capture; answer no, non-interactively.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Operator API tests: schemathesis (PyPI) checks `pshim6 run` against its OpenAPI document.
SCHEMATHESIS_VERSION=3.39.16
if ! st --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION" ||
  ! python3 -c "import hypothesis; assert hypothesis.__version__ == '6.131.0'" 2>/dev/null; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  # Debian's system Python refuses pip installs unless told (PEP 668); CI is a throwaway box.
  # Hypothesis pinned too: newer releases break schemathesis 3's example generation.
  pkgs=("schemathesis==$SCHEMATHESIS_VERSION" "hypothesis==6.131.0")
  python3 -m pip install -q "${pkgs[@]}" ||
    python3 -m pip install -q --break-system-packages "${pkgs[@]}"
fi
