#!/usr/bin/env bash
# The Compose Specification's JSON schema, from the compose-go module (pinned) on the Go
# module proxy, once per machine; prints its path. The tests validate docker-compose.yml
# against it: deploy/compose-schema.sh && python -m jsonschema ...
source "$(dirname "$0")/lib.sh"

COMPOSE_GO_VERSION="v2.10.0"
dir="${MC_TOOLS_DIR:-$HOME/.cache/montecarlo-tools}/compose-spec-$COMPOSE_GO_VERSION"
if [ ! -f "$dir/compose-spec.json" ]; then
  go=$(command -v go || echo /usr/local/go/bin/go)
  [ -x "$go" ] || die "the compose schema comes from the Go module proxy: install Go first"
  tmp=$(mktemp -d)
  trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
  GOPATH="$tmp/gopath" GOFLAGS=-modcacherw "$go" mod download -json \
    "github.com/compose-spec/compose-go/v2@$COMPOSE_GO_VERSION" >"$tmp/module.json" \
    || die "go mod download of compose-go $COMPOSE_GO_VERSION failed: $(cat "$tmp/module.json")"
  module_dir=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Dir"])' "$tmp/module.json")
  mkdir -p "$dir"
  cp "$module_dir/schema/compose-spec.json" "$dir/compose-spec.json"
fi
echo "$dir/compose-spec.json"
