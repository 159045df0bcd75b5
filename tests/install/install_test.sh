#!/usr/bin/env bash
# Installs the build tree $1 into a temporary prefix, then configures, builds and runs a tiny outside
# project that finds it with find_package(shardflow).
set -euo pipefail
build="${1:?usage: $0 build-dir}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/shardflow-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -x "$work/prefix/bin/shardflow"
test -f "$work/prefix/include/shardflow/core/batch_processor.hpp"
flags=()
sanitizers=$(sed -n 's/^SHARDFLOW_SANITIZERS:STRING=//p' "$build/CMakeCache.txt")
[ -z "$sanitizers" ] || flags+=("-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=$sanitizers")
cmake -S "$here/consumer" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" "${flags[@]}" > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log"
"$work/build/consumer"
echo "install test passed"
