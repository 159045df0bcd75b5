#!/usr/bin/env bash
# build.sh - set up, build and run shardflow on Debian 12. Run as root on a fresh machine (or with sudo).
#
#   ./build.sh run     install the Debian packages, build the shardflow binary (release; only it and
#                      the libraries it links), run the main job: generate a local stream (build/demo)
#                      and process it with `shardflow run`
#   ./build.sh install PREFIX
#                      install the packages, build (release), install into PREFIX: bin/shardflow, the
#                      headers, libraries, CMake package, pkg-config files, man page, LICENSE, CHANGELOG
#   ./build.sh test    install, build with AddressSanitizer + UBSan, run the whole test suite, then
#                      build the fuzz harnesses with clang and run each for a short smoke
#   ./build.sh fuzz [NAME] [SECONDS]
#                      build the fuzz harnesses (clang) and run NAME (default: all) for SECONDS
#                      (default 600) each, keeping the corpus in build/fuzz/corpus/NAME
#   ./build.sh peers   install (also Java 17, Maven, Node and npm), build with sanitizers and run the
#                      peers stage: the real KCL MultiLangDaemon on local emulators, in a loopback-only
#                      network namespace (ctest -L peers; downloads pinned jars and npm packages into
#                      $SHARDFLOW_PEERS_CACHE once; about 12 minutes on 2 cores)
#   ./build.sh bench   install, build (release), run every benchmark
#   ./build.sh deps    only install the Debian packages
#
# Build trees: build/release, build/sanitize, build/peers and build/fuzz (clang). Extra arguments after `run` go to
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
    install_deps
    configure_and_build build/sanitize -DCMAKE_BUILD_TYPE=Debug -DSHARDFLOW_SANITIZERS=address,undefined
    log "running the test suite"
    (cd "$here/build/sanitize" && ctest --output-on-failure -j "$jobs")
    build_fuzz 25
    log "fuzz smoke: every harness replays its regressions, then fuzzes 25 s (ASan + UBSan)"
    (cd "$here/build/fuzz" && ctest --output-on-failure -L fuzz -j "$jobs")
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
    # Java, Maven, Node and npm as Debian packages only where the command is missing (a machine may
    # have them from elsewhere: Debian's npm conflicts with a newer Node).
    packages+=(python3 util-linux iproute2)
    command -v java > /dev/null || packages+=(openjdk-17-jdk-headless)
    command -v mvn > /dev/null || packages+=(maven)
    command -v node > /dev/null || packages+=(nodejs)
    command -v npm > /dev/null || packages+=(npm)
    install_deps
    # A tree of its own, so that the option does not add the stage to `./build.sh test`.
    targets=shardflow configure_and_build build/peers -DCMAKE_BUILD_TYPE=Debug \
      -DSHARDFLOW_SANITIZERS=address,undefined -DSHARDFLOW_PEER_TESTS=ON
    log "peers stage: the real KCL MultiLangDaemon (3.1.3 and 2.7.2) on kinesis-local and dynalite"
    (cd "$here/build/peers" && ctest --output-on-failure -L peers)
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
