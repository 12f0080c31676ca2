# Shared by scripts/run, scripts/test and bench/: installing, building, and throwaway PostgreSQL.
# Source it; it defines functions only (plus HOTPATH_ROOT).
HOTPATH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages the build, the tests and the local database need.
HOTPATH_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libpqxx-dev libpq-dev prometheus-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev zlib1g-dev libssl-dev libjemalloc-dev nlohmann-json3-dev libsimdjson-dev
  postgresql postgresql-contrib prometheus nghttp2-client wrk curl nginx-light python3-h2 openssl
  golang-github-grpc-ecosystem-grpc-gateway-dev golang-google-grpc-dev golang-grpc-gateway
)

# What only the tests need, beside those: a real browser for the CORS test (tests/cors_e2e_test.cc),
# with the fonts Debian only recommends (installs here skip recommendations); Python's grpcio and
# Go's code generators and compiler for the other languages' clients (tests/clients_e2e_test.cc);
# gdb, for where every thread was when a test's call hangs (tests/test_env.h ThreadStacks).
HOTPATH_TEST_PACKAGES=(chromium fonts-liberation python3-grpcio python3-protobuf golang-go
  golang-goprotobuf-dev protoc-gen-go-grpc gdb)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs whichever of HOTPATH_PACKAGES (and any extra names given) are missing.
install_packages() {
  local missing=() p
  for p in "${HOTPATH_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Configures (once) and builds with Ninja and ccache: build/, or $HOTPATH_BUILD_DIR with extra
# $HOTPATH_CXX_FLAGS (the sanitizer builds) and compiler $HOTPATH_CXX (clang++-14, say). Extra
# args are ninja targets.
build() {
  local dir="${HOTPATH_BUILD_DIR:-$HOTPATH_ROOT/build}"
  if [ ! -f "$dir/build.ninja" ]; then
    log "configuring $dir"
    local flags=()
    [ -n "${HOTPATH_CXX_FLAGS:-}" ] && flags+=(-DCMAKE_CXX_FLAGS="$HOTPATH_CXX_FLAGS")
    [ -n "${HOTPATH_CXX:-}" ] && flags+=(-DCMAKE_CXX_COMPILER="$HOTPATH_CXX")
    # shellcheck disable=SC2206
    [ -n "${HOTPATH_CMAKE_ARGS:-}" ] && flags+=($HOTPATH_CMAKE_ARGS)
    cmake -S "$HOTPATH_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="${HOTPATH_BUILD_TYPE:-RelWithDebInfo}" \
      ${flags[@]+"${flags[@]}"} >/dev/null
  fi
  log "building"
  cmake --build "$dir" -j "${HOTPATH_JOBS:-2}" ${1:+--target "$@"}
}

# use_build COMPILER SANITIZER: selects the build directory and flags for scripts/test and
# scripts/fuzz (COMPILER gcc|clang, SANITIZER none|address|thread); each pair has a directory of its
# own. Sanitizer builds are -O1 with line tables only: a third of the compile time of
# RelWithDebInfo, and stack traces still name lines. NDEBUG as in every other build: Debian's
# protobuf is built with it, and its headers' inline map code without it disagrees with the
# library about a map's layout (a crash in the TSan build). clang with ASan+UBSan is also the fuzzers'
# build (coverage instrumentation on, libFuzzer linked only into the fuzz targets), so CI compiles
# that tree once for both.
use_build() {
  local compiler=$1 sanitizer=$2
  HOTPATH_BUILD_DIR="$HOTPATH_ROOT/build"
  [ "$compiler" = clang ] && HOTPATH_BUILD_DIR+="-clang"
  [ "$sanitizer" != none ] && HOTPATH_BUILD_DIR+="-$sanitizer"
  export HOTPATH_BUILD_DIR
  unset HOTPATH_CXX HOTPATH_CXX_FLAGS HOTPATH_CMAKE_ARGS HOTPATH_BUILD_TYPE
  [ "$compiler" = clang ] && export HOTPATH_CXX=clang++-14
  local lines="-g1"
  [ "$compiler" = clang ] && lines="-gline-tables-only"
  case "$sanitizer" in
    address)
      export HOTPATH_BUILD_TYPE=None
      export HOTPATH_CXX_FLAGS="-O1 $lines -DNDEBUG -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
      if [ "$compiler" = clang ]; then
        HOTPATH_CXX_FLAGS+=" -fsanitize=fuzzer-no-link"
        export HOTPATH_CMAKE_ARGS="-DHOTPATH_FUZZ=ON"
      fi
      export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
      export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$HOTPATH_ROOT/tests/lsan.supp}"
      export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" ;;
    thread)
      export HOTPATH_BUILD_TYPE=None
      export HOTPATH_CXX_FLAGS="-O1 $lines -DNDEBUG -fsanitize=thread"
      # g++ warns that TSan does not model the fences in Boost.Asio's scheduler: not ours to fix.
      [ "$compiler" = gcc ] && HOTPATH_CXX_FLAGS+=" -Wno-tsan"
      export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 suppressions=$HOTPATH_ROOT/tests/tsan.supp}" ;;
  esac
}

# --- for the benchmark scripts ------------------------------------------------------------------
# turns ROUND NAME...: the names, rotated by ROUND - 1: the first of a round goes last in the next
# (with two, A then B in odd rounds, B then A in even ones)
turns() { local r=$((($1 - 1) % ($# - 1))); shift; local names=("$@"); echo "${names[@]:r}" "${names[@]:0:r}"; }
# ratio A B: A / B to two places ("n/a" when B is not above 0)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# median VALUE...: their median (the mean of the middle two when there are evenly many)
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# proc_ticks PID: the process's user + system CPU so far, in clock ticks (getconf CLK_TCK a second)
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# free_port: a TCP port free on 127.0.0.1 now and not handed out before to this script. The kernel
# may give the same free port to two binds in a row (bench/run once got one port for two servers),
# so the ports handed out are kept in a file of the calling shell's (a day at most).
free_port() {
  /usr/bin/python3 - "${TMPDIR:-/tmp}/hotpath-ports.$$" <<'PY'
import os, socket, sys, time
path = sys.argv[1]
folder = os.path.dirname(path)
for name in os.listdir(folder):
    if name.startswith("hotpath-ports."):
        try:
            if time.time() - os.path.getmtime(os.path.join(folder, name)) > 86400:
                os.remove(os.path.join(folder, name))
        except OSError:
            pass
used = set(open(path).read().split()) if os.path.exists(path) else set()
while True:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = str(s.getsockname()[1])
    s.close()
    if port not in used:
        break
with open(path, "a") as f:
    f.write(port + "\n")
print(port)
PY
}
# wait_http URL: waits up to 10 s for URL to answer 2xx.
# splice_results FILE HEADING: puts FILE (a section starting "# HEADING") into bench/RESULTS.md,
# replacing the section of that heading up to the next top-level one, or before "# Reliability"
# (or at the end) the first time. bench/run rewrites RESULTS.md and keeps a section only when FILE
# is one of the bench/*.md it includes: a script that splices must write its section there.
splice_results() {
  /usr/bin/python3 - "$HOTPATH_ROOT/bench/RESULTS.md" "$1" "$2" <<'PY'
import re, sys
path, section_path, heading = sys.argv[1:]
text = open(path).read()
section = open(section_path).read().rstrip() + "\n"
pattern = re.compile(r'^# ' + re.escape(heading) + r'\n.*?(?=^# |\Z)', re.S | re.M)
if pattern.search(text):
    text = pattern.sub(lambda _: section + "\n", text)
elif "\n# Reliability\n" in text:
    text = text.replace("\n# Reliability\n", "\n" + section + "\n# Reliability\n", 1)
else:
    text = text.rstrip() + "\n\n" + section
open(path, "w").write(text)
PY
}

wait_http() { for _ in $(seq 1 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
wait_tcp() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listens on $1" >&2; return 1; }

# build_grpc_ceiling DIR: the gRPC C++ ceiling of ../shared/peers (grpc_ceiling), built as
# DIR/ceiling, as its README says (run it as DIR/ceiling 127.0.0.1:PORT 2).
build_grpc_ceiling() {
  mkdir -p "$1" && cp "$HOTPATH_ROOT/../shared/peers/grpc_ceiling/"{echo.proto,server.cc} "$1/"
  (cd "$1" && protoc --cpp_out=. --grpc_out=. --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" echo.proto \
    && g++ -O2 -std=c++20 server.cc echo.pb.cc echo.grpc.pb.cc -o ceiling $(pkg-config --cflags --libs grpc++ protobuf) -lpthread)
}

# --- throwaway PostgreSQL -------------------------------------------------------------------------
# A cluster lives in a base directory: data/, socket/ and log. As root it runs as the postgres user
# (PostgreSQL refuses root), so the base directory must be one that user can reach: under /tmp.

PG_BIN=""
pg_bin() {
  [ -n "$PG_BIN" ] || PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$PG_BIN" ] || { echo "PostgreSQL server binaries not found" >&2; return 1; }
}

pg_as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# pg_start BASE [PORT]: initialises BASE on first use, starts it on a unix socket in BASE/socket
# (and on 127.0.0.1:PORT too when HOTPATH_PG_TCP=1). Tuned for throwaway use when HOTPATH_PG_FAST=1.
pg_start() {
  local base=$1 port=${2:-5432}
  pg_bin || return 1
  mkdir -p "$base/socket"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$base"
  if [ ! -f "$base/data/PG_VERSION" ]; then
    pg_as_owner "$PG_BIN/initdb" -D "$base/data" -U postgres -A trust -E UTF8 --no-locale >"$base/initdb.log" 2>&1 \
      || { cat "$base/initdb.log" >&2; return 1; }
    {
      echo "unix_socket_directories = '$base/socket'"
      echo "port = $port"
      if [ "${HOTPATH_PG_TCP:-0}" = 1 ]; then echo "listen_addresses = '127.0.0.1'"; else echo "listen_addresses = ''"; fi
      echo "max_connections = 300"
      echo "shared_buffers = 256MB"
      if [ "${HOTPATH_PG_FAST:-0}" = 1 ]; then
        echo "fsync = off"; echo "synchronous_commit = off"; echo "full_page_writes = off"
      fi
    } | pg_as_owner tee -a "$base/data/postgresql.conf" >/dev/null
  fi
  if pg_as_owner "$PG_BIN/pg_ctl" -D "$base/data" status >/dev/null 2>&1; then return 0; fi
  pg_as_owner "$PG_BIN/pg_ctl" -D "$base/data" -l "$base/log" -w -t 60 start >/dev/null \
    || { tail -n 20 "$base/log" >&2; return 1; }
}

# pg_standby PRIMARY_BASE BASE PORT: a hot standby of the cluster in PRIMARY_BASE, made with
# pg_basebackup -R (streaming replication from it), in BASE on its own socket and PORT; started.
pg_standby() {
  local primary=$1 base=$2 port=$3
  pg_bin || return 1
  mkdir -p "$base/socket"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$base"
  if [ ! -f "$base/data/PG_VERSION" ]; then
    # The primary keeps WAL for a while: the tests' checkpoints (every CREATE DATABASE) must not
    # remove a segment the backup or a standby still has to stream.
    "$PG_BIN/psql" -qAt "$(pg_url "$primary" postgres)" -c "ALTER SYSTEM SET wal_keep_size = '512MB'" \
      -c "SELECT pg_reload_conf()" >/dev/null
    pg_as_owner "$PG_BIN/pg_basebackup" -D "$base/data" -R -X stream -c fast \
      -d "host=$primary/socket port=$(pg_port "$primary") user=postgres" >"$base/basebackup.log" 2>&1 \
      || { cat "$base/basebackup.log" >&2; return 1; }
    # Later lines win: its own socket and port; everything else as the primary's.
    printf "unix_socket_directories = '%s'\nport = %s\nlisten_addresses = ''\nhot_standby = on\n" \
      "$base/socket" "$port" | pg_as_owner tee -a "$base/data/postgresql.conf" >/dev/null
  fi
  pg_as_owner "$PG_BIN/pg_ctl" -D "$base/data" -l "$base/log" -w -t 60 start >/dev/null \
    || { tail -n 20 "$base/log" >&2; return 1; }
}

pg_stop() {
  pg_bin || return 1
  [ -f "$1/data/PG_VERSION" ] || return 0
  pg_as_owner "$PG_BIN/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null 2>&1 || true
}

# pg_port BASE: the port the cluster was set up with.
pg_port() { sed -n "s/^port = \([0-9]*\)$/\1/p" "$1/data/postgresql.conf" | tail -n 1; }

# pg_url BASE DBNAME: a libpq URL for DBNAME over the cluster's socket.
pg_url() { echo "postgresql:///$2?host=$1/socket&port=$(pg_port "$1")&user=postgres"; }

# pg_createdb BASE DBNAME: creates DBNAME unless it exists.
pg_createdb() {
  pg_bin || return 1
  "$PG_BIN/psql" -qAt "$(pg_url "$1" postgres)" -c "SELECT 1 FROM pg_database WHERE datname = '$2'" | grep -q 1 \
    || "$PG_BIN/psql" -q "$(pg_url "$1" postgres)" -c "CREATE DATABASE \"$2\""
}

# start_builds WORK DB_URL COMMON_FLAGS SPEC...: for side-by-side runs of hotpathd builds
# (bench/cold_cache, bench/refresh_cost): one hotpathd per SPEC ("BIN_DIR [its own flags]") on
# DB_URL, COMMON_FLAGS (one word, may be empty) before its own, each on free ports: grpc[i] and
# http[i] (set here), its pid added to pids, its log WORK/hotpathd-i.log. The first migrates and
# seeds 10,000 items.
start_builds() {
  local work=$1 db_url=$2 common=$3 i spec bin flags
  shift 3
  grpc=() http=()
  for i in $(seq 0 $(($# - 1))); do
    spec=${*:$((i + 1)):1}
    bin=${spec%% *} flags=()
    [ "$spec" = "$bin" ] || read -r -a flags <<<"${spec#* }"
    [ -z "$common" ] || flags=("$common" "${flags[@]}")
    grpc[i]=$(free_port); http[i]=$(free_port)
    "$bin/hotpathd" --database_url="$db_url" --grpc_host=127.0.0.1 --grpc_port="${grpc[i]}" \
      --http_host=127.0.0.1 --http_port="${http[i]}" --pool_max=16 --migrate="$([ "$i" = 0 ] && echo true || echo false)" \
      "${flags[@]}" >"$work/hotpathd-$i.log" 2>&1 &
    pids+=($!)
    wait_http "http://127.0.0.1:${http[i]}/readyz"
    if [ "$i" = 0 ]; then
      "$HOTPATH_ROOT/build/bin/hotpath" --addr="127.0.0.1:${grpc[0]}" --deadline=120s seed --items 10000 >/dev/null
      pg_bin && "$PG_BIN/psql" -qAt "$db_url" -c "ANALYZE items"
    fi
  done
}
