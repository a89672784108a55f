# Shared helpers for the Quire test-server scripts (sourced, not executed).
# shellcheck shell=bash

# Repo root = three levels up from this file (packages/test-servers/bin/).
QUIRE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
# Everything downloaded or created lives here (the repo's .cache/ is git-ignored).
QUIRE_SERVERS_DIR="${QUIRE_SERVERS_DIR:-$QUIRE_ROOT/.cache/servers}"
# Pinned Maven dependency plugin (its copy goals run without a project pom).
MVN_DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
# Java 17 runs both Cassandra 5.0 and s3proxy 4.x (Cassandra 5.0 refuses Java 25).
QUIRE_JAVA_HOME="${QUIRE_JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"

log() { printf '[%s] %s\n' "${LOG_TAG:-test-servers}" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "${LOG_TAG:-test-servers}" "$*" >&2; exit 1; }

now_ms() { date +%s%3N; }
elapsed_s() { # start_ms -> "12.3"
  local d=$(( $(now_ms) - $1 ))
  printf '%d.%d' $(( d / 1000 )) $(( (d % 1000) / 100 ))
}

# Installs what the scripts need from Debian when it is missing (fresh machine).
ensure_toolchain() {
  local missing=()
  [ -x "$QUIRE_JAVA_HOME/bin/java" ] || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      log "installing missing Debian packages: ${missing[*]}"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
    else
      die "missing: ${missing[*]} (install them, or set QUIRE_JAVA_HOME to a Java 17 home)"
    fi
  fi
  [ -x "$QUIRE_JAVA_HOME/bin/java" ] || die "no java at $QUIRE_JAVA_HOME/bin/java (set QUIRE_JAVA_HOME to a Java 17 home)"
}

# pid_is <pidfile> <marker>: prints the pid and returns 0 when the pid in the file is alive
# and its command line carries the marker (guards against recycled pids).
pid_is() {
  local pidfile="$1" marker="$2" pid
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
  echo "$pid"
}

# Listening sockets that cover <host>:<port> (the exact address, its IPv4-mapped IPv6 form, or a
# wildcard address).
listeners_on() {
  ss -ltnpH "sport = :$2" 2>/dev/null | awk -v a="$1:$2" -v m="[::ffff:$1]:$2" -v p=":$2" '
    { addr = $4 }
    addr == a || addr == m || addr == "0.0.0.0" p || addr == "*" p || addr == "[::]" p { print }'
}
# listener_pid <host> <port>: pid of the process listening there (empty if none).
listener_pid() { listeners_on "$1" "$2" | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2; }
port_busy() { [ -n "$(listeners_on "$1" "$2")" ]; }

cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }

# stop_pid <pid> <what> <timeout_s>: SIGTERM, wait, SIGKILL if it lingers.
stop_pid() {
  local pid="$1" what="$2" limit="${3:-60}" t0
  t0=$(now_ms)
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if [ $(( ($(now_ms) - t0) / 1000 )) -ge "$limit" ]; then
      log "$what (pid $pid) still alive after ${limit}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.3
  done
  log "$what (pid $pid) stopped in $(elapsed_s "$t0")s"
}

# Writes a word ("started" / "reused") for a caller that asked for it.
report_result() { if [ -n "${QUIRE_RESULT_FILE:-}" ]; then printf '%s\n' "$1" >"$QUIRE_RESULT_FILE"; fi; }
