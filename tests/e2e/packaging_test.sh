#!/usr/bin/env bash
# The version in one place and what goes with it: the binary says the version of project() in
# CMakeLists.txt, CHANGELOG.md has a dated entry for that version (a bump without an entry fails
# here), LICENSE is the Apache License 2.0, and the build tree's man page (target man, beside
# apps/) carries the same version.
source "$(dirname "$0")/lib.sh"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$(cd "$(dirname "$SHARDFLOW")/../.." && pwd)"

version=$(sed -n 's/^project(shardflow VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")
check "CMakeLists.txt gives a version" test -n "$version"
check "--version prints shardflow $version" test "$("$SHARDFLOW" --version)" = "shardflow $version"

# The first version heading under [Unreleased] is this version, with a date.
first=$(grep -m 1 -E '^## \[[0-9]' "$ROOT/CHANGELOG.md" || true)
check "CHANGELOG.md's latest entry is $version with a date ($first)" \
  grep -qE "^## \[${version//./\\.}\] - [0-9]{4}-[0-9]{2}-[0-9]{2}$" <<< "$first"
check "CHANGELOG.md keeps an [Unreleased] section" grep -qx '## \[Unreleased\]' "$ROOT/CHANGELOG.md"

check "LICENSE is the Apache License 2.0" \
  grep -q "Version 2.0, January 2004" "$ROOT/LICENSE"
check "the man page is version $version" \
  grep -q "shardflow $version" "$BUILD/shardflow.1"
finish
