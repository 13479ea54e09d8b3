#!/usr/bin/env bash
# Install Helm (pinned) from the Go module proxy, once per machine, and print its path.
# The chart's tests render it with this binary: deploy/helm.sh && helm template ...
source "$(dirname "$0")/lib.sh"

HELM_VERSION="v3.16.4"
# Outside the checkout, so fresh clones (CI) reuse it; go's module and build caches too.
dir="${MC_TOOLS_DIR:-$HOME/.cache/montecarlo-tools}/helm-$HELM_VERSION"
if [ ! -x "$dir/helm" ]; then
  go=$(command -v go || echo /usr/local/go/bin/go)
  [ -x "$go" ] || die "Helm is built from the Go module proxy: install Go (1.22 or later) first"
  log "building helm $HELM_VERSION (about 2 minutes the first time)"
  mkdir -p "$dir"
  GOBIN="$dir.tmp" "$go" install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >"$dir.log" 2>&1 \
    || { tail -20 "$dir.log" >&2; die "go install of helm $HELM_VERSION failed (log: $dir.log)"; }
  mv "$dir.tmp/helm" "$dir/helm" && rmdir "$dir.tmp"
fi
echo "$dir/helm"
