#!/usr/bin/env bash
# build.sh - set up, build and run shardflow on Debian 12. Run as root on a fresh machine (or with sudo).
#
#   ./build.sh run     install the Debian packages, build the shardflow binary (release; only it and
#                      the libraries it links), run the main job: generate a local stream (build/demo)
#                      and process it with `shardflow run`
#   ./build.sh install PREFIX
#                      install the packages, build (release), install into PREFIX: bin/shardflow, the
#                      headers, libraries, CMake package, pkg-config files, man page, LICENSE, CHANGELOG
#   ./build.sh test    install, build with AddressSanitizer + UBSan, run the whole test suite: the
#                      unit, actor and end-to-end tests, then the peers stage (real peers, below),
#                      then the fuzz harnesses (clang) for a short smoke each. Every stage runs; the
#                      summary names each one's outcome. Exit 0 all passed, 1 a test failed, 3 no test
#                      failed but a peer could not be set up (a download, Java, unshare -n)
#   ./build.sh fuzz [NAME] [SECONDS]
#                      build the fuzz harnesses (clang) and run NAME (default: all) for SECONDS
#                      (default 600) each, keeping the corpus in build/fuzz/corpus/NAME
#   ./build.sh peers   only the peers stage of `test`: the real KCL MultiLangDaemon on local emulators
#                      and a real Kafka broker, each in a loopback-only network namespace (ctest -L
#                      peers; installs Java 17, Maven, Node and npm where missing; downloads pinned
#                      jars and npm packages into $SHARDFLOW_PEERS_CACHE once)
#   ./build.sh bench   install, build (release), run every benchmark
#   ./build.sh deps    only install the Debian packages
#
# Build trees: build/release, build/sanitize (also the peers stage) and build/fuzz (clang). Extra arguments after `run` go to
# `shardflow run`. The binary of `run` is build/release/apps/shardflow/shardflow.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
jobs="$(nproc 2>/dev/null || echo 2)"

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libcaf-dev libfmt-dev catch2 libcli11-dev libtomlplusplus-dev help2man libsimdjson-dev libssl-dev libsqlite3-dev
  libcpp-httplib-dev sqlite3 libprotobuf-dev protobuf-compiler zlib1g-dev
  librdkafka-dev libpq-dev
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

install_deps() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return
  fi
  log "installing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

configure_and_build() { # dir, cmake args... (builds $targets, a space-separated list, default all)
  local dir="$1"; shift
  local launcher=() target_args=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  [ -z "${targets:-}" ] || read -r -a target_args <<< "--target ${targets}"
  log "configuring $dir"
  cmake -S "$here" -B "$here/$dir" -G Ninja "${launcher[@]}" "$@" >/dev/null
  log "building ${targets:-everything} in $dir"
  cmake --build "$here/$dir" "${target_args[@]}" -j "$jobs"
}

install_to() { # prefix: what `cmake --install` installs (every library, the binary, the man page)
  local prefix
  prefix="$(mkdir -p "$1" && cd "$1" && pwd)"
  targets=shardflow_installables configure_and_build build/release -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix" # GNUInstallDirs' lib/ vs lib/<multiarch>/ for /usr follows it
  log "installing to $prefix"
  cmake --install "$here/build/release" --prefix "$prefix" >/dev/null
  log "installed $prefix/bin/shardflow (man page: man -l $prefix/share/man/man1/shardflow.1)"
  case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) log "to put it on PATH: export PATH=\"$prefix/bin:\$PATH\" (in ~/.profile to keep it)" ;;
  esac
}

fuzz_packages=(clang libclang-rt-14-dev)

# The peers stage's tools. Java, Maven, Node and npm as Debian packages only where the command is
# missing (a machine may have them from elsewhere: Debian's npm conflicts with a newer Node).
add_peer_packages() {
  packages+=(python3 util-linux iproute2 curl)
  command -v java > /dev/null || packages+=(openjdk-17-jdk-headless)
  command -v mvn > /dev/null || packages+=(maven)
  command -v node > /dev/null || packages+=(nodejs)
  command -v npm > /dev/null || packages+=(npm)
}

build_sanitize() {
  configure_and_build build/sanitize -DCMAKE_BUILD_TYPE=Debug -DSHARDFLOW_SANITIZERS=address,undefined \
    -DSHARDFLOW_PEER_TESTS=ON
}

# The peers stage on build/sanitize, under a hard limit of its own: its set-up first (exit 2 of a
# set-up test is a peer that could not be set up, told apart from a failed assertion), then every
# scenario. Prints the outcome; returns 0 passed, 1 a test failed, 3 set-up failed.
run_peers() {
  local limit="${SHARDFLOW_PEERS_STAGE_LIMIT:-1200}" status=0
  log "peers stage (limit $limit s): set-up"
  (cd "$here/build/sanitize" && timeout --kill-after=30 "$limit" ctest --output-on-failure -L peers -R setup) ||
    status=$?
  if [ "$status" -ne 0 ]; then
    log "peers stage: PEER SET-UP FAILED (status $status): no scenario ran; see the set-up output above"
    return 3
  fi
  log "peers stage: the scenarios"
  local out="$here/build/sanitize/peers-stage.log"
  (cd "$here/build/sanitize" && timeout --kill-after=30 "$limit" ctest --output-on-failure -L peers -E setup -j "$jobs") \
    2>&1 | tee "$out" || status=$?
  [ "$status" -ne 124 ] || log "peers stage: FAILED: it passed its $limit s limit"
  [ "$status" -eq 0 ] || return 1
  if grep -q '(Skipped)' "$out"; then
    log "peers stage: PEER SET-UP FAILED in a scenario (exit 2, reported as Skipped above)"
    return 3
  fi
}

build_fuzz() { # seconds per harness
  targets=fuzz_all configure_and_build build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++ -DSHARDFLOW_FUZZ=ON -DSHARDFLOW_SANITIZERS=address,undefined \
    -DSHARDFLOW_FUZZ_SECONDS="$1"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  run)
    install_deps
    targets=shardflow configure_and_build build/release -DCMAKE_BUILD_TYPE=Release
    demo="$here/build/demo"
    rm -rf "$demo"
    log "generating a local stream: 4 shards, 1,000,000 records ($demo/stream)"
    "$here/build/release/apps/shardflow/shardflow" generate "$demo/stream" --shards 4 --records 1000000
    log "running: shardflow run $demo/stream --flusher file:$demo/out $*"
    "$here/build/release/apps/shardflow/shardflow" run "$demo/stream" --flusher "file:$demo/out" "$@"
    ;;
  install)
    [ $# -eq 1 ] || { echo "usage: ./build.sh install PREFIX (e.g. ~/.local or /usr/local)" >&2; exit 2; }
    install_deps
    install_to "$1"
    ;;
  test)
    # man-db: tests/install reads the man page with man -l; postgresql: the postgres tests start a
    # server of their own (initdb, pg_ctl)
    packages+=("${fuzz_packages[@]}" man-db postgresql)
    add_peer_packages
    install_deps
    build_sanitize
    started=$SECONDS
    log "running the test suite (every test but the peers stage)"
    suite=passed peers=passed fuzz=passed
    (cd "$here/build/sanitize" && ctest --output-on-failure -LE peers -j "$jobs") || suite=FAILED
    suite_s=$((SECONDS - started))
    peers_status=0
    run_peers || peers_status=$?
    case $peers_status in 0) ;; 3) peers="SET-UP FAILED" ;; *) peers=FAILED ;; esac
    peers_s=$((SECONDS - started - suite_s))
    { build_fuzz 25 && log "fuzz smoke: every harness replays its regressions, then fuzzes 25 s (ASan + UBSan)" &&
      (cd "$here/build/fuzz" && ctest --output-on-failure -L fuzz -j "$jobs"); } || fuzz=FAILED
    fuzz_s=$((SECONDS - started - suite_s - peers_s))
    log "summary: suite $suite (${suite_s} s), peers stage $peers (${peers_s} s), fuzz smoke $fuzz (${fuzz_s} s)"
    [ "$suite" = passed ] && [ "$fuzz" = passed ] && [ "$peers" != FAILED ] || exit 1
    [ "$peers" = passed ] || exit 3
    ;;
  fuzz)
    packages+=("${fuzz_packages[@]}")
    install_deps
    name="${1:-}" seconds="${2:-600}"
    build_fuzz "$seconds"
    log "fuzzing ${name:-every harness} for $seconds s each; corpus kept in build/fuzz/corpus"
    mkdir -p "$here/build/fuzz/corpus"
    (cd "$here/build/fuzz" && SHARDFLOW_FUZZ_CORPUS_ROOT="$here/build/fuzz/corpus" \
      ctest --output-on-failure -V -L fuzz ${name:+-R "^fuzz_${name}\$"})
    ;;
  peers)
    add_peer_packages
    install_deps
    targets=shardflow build_sanitize
    run_peers || exit $?
    ;;
  bench)
    packages+=(gnuplot-nox bc bsdextrautils)
    install_deps
    configure_and_build build/release -DCMAKE_BUILD_TYPE=Release
    log "running the benchmarks (bench/run.sh): table, bench/out/results.json, bench/out/actors.png"
    "$here/bench/run.sh" "$here/build/release" "$here/bench/out"
    ;;
  deps)
    install_deps
    ;;
  *)
    sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] || [ "$cmd" = "-h" ] || [ "$cmd" = "--help" ] || exit 2
    ;;
esac
