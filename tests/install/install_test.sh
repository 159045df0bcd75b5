#!/usr/bin/env bash
# tests/install/install_test.sh - installs the build tree $1 into a temporary prefix and checks what
# an operator or an outside project gets from it.
#
#   install_test.sh BUILD-DIR [find_package|pkg_config|man_page]   (default: all three)
#
# find_package  the layout (binary, headers, CMake package, LICENSE), then configures, builds and runs
#               tests/install/consumer with find_package(shardflow COMPONENTS core flushers), and
#               configures tests/install/all_components (every component, each target defined);
# pkg_config    every shardflow*.pc resolves, then builds and runs the same consumer with nothing but
#               `pkg-config --cflags --libs shardflow` (core + flushers), and checks the version;
#               then consumer/actors_main.cpp with `pkg-config ... shardflow-actors` (CAF);
# man_page      share/man/man1/shardflow.1 is a man page that names every subcommand and the version.
set -euo pipefail
build="${1:?usage: $0 build-dir [find_package|pkg_config|man_page]}"
what="${2:-all}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/shardflow-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
sanitizers=$(sed -n 's/^SHARDFLOW_SANITIZERS:STRING=//p' "$build/CMakeCache.txt")
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
libdir=$(find "$prefix" -type d -name pkgconfig -printf '%h\n' | head -n 1)

fail() { echo "FAILED: $*" >&2; exit 1; }

check_find_package() {
  test -x "$prefix/bin/shardflow" || fail "no bin/shardflow"
  test -f "$prefix/include/shardflow/core/batch_processor.hpp" || fail "no headers"
  test -f "$prefix/share/doc/shardflow/LICENSE" || fail "no share/doc/shardflow/LICENSE"
  grep -q "Apache License" "$prefix/share/doc/shardflow/LICENSE" || fail "LICENSE is not Apache"
  local flags=()
  [ -z "$sanitizers" ] || flags+=("-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=$sanitizers")
  cmake -S "$here/consumer" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" "${flags[@]}" \
    > "$work/configure.log"
  cmake --build "$work/build" > "$work/build.log"
  "$work/build/consumer"
  echo "ok: find_package consumer"
  cmake -S "$here/all_components" -B "$work/all" -DCMAKE_PREFIX_PATH="$prefix" > "$work/all.log" 2>&1 \
    || { cat "$work/all.log" >&2; fail "find_package(shardflow) with every component"; }
  echo "ok: find_package(shardflow) with every component"
}

check_pkg_config() {
  [ -n "$libdir" ] && test -f "$libdir/pkgconfig/shardflow.pc" || fail "no lib/pkgconfig/shardflow.pc"
  export PKG_CONFIG_PATH="$libdir/pkgconfig"
  local pc
  for pc in shardflow shardflow-core shardflow-flushers shardflow-actors shardflow-kcl \
            shardflow-local shardflow-stores shardflow-postgres shardflow-kafka; do
    pkg-config --exists --print-errors "$pc" || fail "pkg-config cannot resolve $pc"
  done
  [ "$(pkg-config --modversion shardflow)" = "$version" ] || fail "shardflow.pc version is not $version"
  pkg-config --cflags shardflow | grep -q -- "-I$prefix/include" || fail "Cflags lack $prefix/include"
  local flags
  read -r -a flags <<< "$(pkg-config --cflags --libs shardflow)"
  c++ -std=c++17 -o "$work/pc_consumer" "$here/consumer/main.cpp" "${flags[@]}" \
    > "$work/pc_build.log" 2>&1 || { cat "$work/pc_build.log" >&2; fail "pkg-config consumer"; }
  "$work/pc_consumer"
  echo "ok: pkg-config consumer (${flags[*]})"
  read -r -a flags <<< "$(pkg-config --cflags --libs shardflow-actors)"
  c++ -std=c++17 -o "$work/pc_actors" "$here/consumer/actors_main.cpp" "${flags[@]}" \
    > "$work/pc_actors.log" 2>&1 || { cat "$work/pc_actors.log" >&2; fail "pkg-config actors consumer"; }
  "$work/pc_actors"
  echo "ok: pkg-config actors consumer (${flags[*]})"
}

check_man_page() {
  local page="$prefix/share/man/man1/shardflow.1"
  test -f "$page" || fail "no share/man/man1/shardflow.1"
  command -v man > /dev/null || fail "no man command to read the page with (Debian: man-db)"
  MANWIDTH=100 man -l "$page" > "$work/man.txt" 2> "$work/man.err" || fail "man -l failed"
  local sub
  for sub in put generate run mld mld-server mld-connect kpl-agg; do
    grep -q -w -- "shardflow $sub" "$work/man.txt" || fail "the man page does not name 'shardflow $sub'"
  done
  grep -q -- "$version" "$work/man.txt" || fail "the man page does not give version $version"
  grep -q "Exit codes" "$work/man.txt" || fail "the man page has no exit codes"
  echo "ok: man page"
}

case "$what" in
  find_package) check_find_package ;;
  pkg_config) check_pkg_config ;;
  man_page) check_man_page ;;
  all) check_find_package; check_pkg_config; check_man_page ;;
  *) fail "unknown check '$what'" ;;
esac
echo "install test passed"
