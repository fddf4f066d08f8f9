#!/usr/bin/env bash
# The whole suite: installs the real peers the tests use (openssl, Debian's etcd, Chromium) when missing,
# builds, type-checks, lints, then runs every test with Node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
# The pinned runtime (the `node` devDependency, Node 24) first, also when this script is run directly.
export PATH="$PWD/node_modules/.bin:$PATH"

need=()
command -v openssl >/dev/null || need+=(openssl)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${need[*]} (apt)" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

npm run --silent build
npx tsc --noEmit -p .
npx biome ci --error-on-warnings .
# The HA tests (a three-member etcd cluster, three replicas: 200 revocations; the README's three
# control planes walked through) run alone, after the rest: their timings (staleness, failover,
# "denied within a second") must not share the two cores with other tests.
node --import tsx --test --test-concurrency=2 $(ls test/*.test.ts | grep -Ev '^test/ha(-walkthrough)?\.test\.ts$')
node --import tsx --test test/ha.test.ts
node --import tsx --test test/ha-walkthrough.test.ts
