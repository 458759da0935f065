#!/usr/bin/env bash
# Validates docker-compose.yml, the default services and the cluster profile,
# with docker-compose (Debian's package: apt-get install docker-compose). It
# needs no container engine: `config` only parses, interpolates and checks
# the file. CI runs it from .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker-compose >/dev/null; then
  echo "compose-check: docker-compose not found; install it (apt-get install -y docker-compose)" >&2
  exit 1
fi

check() {
  local what=$1; shift
  local out
  if ! out=$(docker-compose "$@" config 2>&1); then
    echo "compose-check: $what: docker-compose $* config failed:" >&2
    echo "$out" >&2
    exit 1
  fi
  # Every service the profile should bring must be there.
  local services
  services=$(docker-compose "$@" config --services)
  for s in "${expect[@]}"; do
    if ! grep -qx "$s" <<<"$services"; then
      echo "compose-check: $what: service $s missing (have: $(echo $services))" >&2
      exit 1
    fi
  done
  echo "compose-check: $what: ok ($(echo $services))"
}

expect=(eventstore nats whistled)
check "default services"
expect=(eventstore nats whistled nats-1 nats-2 nats-3 eventstore-1 eventstore-2 eventstore-3 whistled-cluster)
check "cluster profile" --profile cluster
