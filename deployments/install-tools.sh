#!/usr/bin/env bash
# Installs the tools that deployments_test.go uses: Helm, built from the Go
# module proxy into the user's cache directory (where the test looks for
# it), and Debian's yamllint and promtool (package prometheus).
# Without them the test skips those checks, except under CI=true.
set -euo pipefail

HELM_VERSION=v3.22.0
dir="${XDG_CACHE_HOME:-$HOME/.cache}/outreach-tools/helm-$HELM_VERSION"
if [[ ! -x "$dir/helm" ]]; then
  echo "building helm $HELM_VERSION into $dir (a few minutes)"
  mkdir -p "${dir%/*}"
  tmp="$(mktemp -d "${dir%/*}/build.XXXXXX")"
  (cd "$tmp" && GOFLAGS= GOBIN="$tmp" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
  mkdir -p "$dir"
  mv "$tmp/helm" "$dir/helm"
  rm -rf "$tmp"
fi
"$dir/helm" version --short

need=()
command -v yamllint >/dev/null || need+=(yamllint)
command -v promtool >/dev/null || need+=(prometheus)
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  # prometheus brings promtool; its service is not started here.
  apt-get install -y --no-install-recommends "${need[@]}"
fi
yamllint --version
promtool --version | head -1
