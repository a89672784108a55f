#!/usr/bin/env bash
# Installs and runs a real Apache Cassandra 5.0 node on loopback for Quire's integration tests.
#
#   cassandra.sh install                 fetch Cassandra (cassandra-all + its runtime jars) from Maven Central, once
#   cassandra.sh start  [node]           start node (default node1) in the background and wait for CQL; reuse if running
#   cassandra.sh stop   [node]           stop the node started from this checkout (pidfile), wait for exit
#   cassandra.sh status [node]           print state; exit 0 when CQL answers, 3 otherwise
#   cassandra.sh cqlsh-ready [node]      exit 0 when the native port answers a CQL OPTIONS request
#   cassandra.sh wipe   [node]           stop the node and delete its data
#   cassandra.sh logs   [node]           tail the node's log
#
# Per-node settings (env), so a 3-node ring on 127.0.0.1/.2/.3 can be started later:
#   CASSANDRA_LISTEN (127.0.0.1)  CASSANDRA_SEEDS (= listen)  CASSANDRA_INITIAL_TOKEN (0)
#   CASSANDRA_PORT (9042)  CASSANDRA_STORAGE_PORT (7000)  CASSANDRA_JMX_PORT (7199)
#   CASSANDRA_DC (datacenter1)  CASSANDRA_RACK (rack1)  CASSANDRA_CLUSTER (quire-test)
#   MAX_HEAP_SIZE (2G)  HEAP_NEWSIZE (128M, only used with CASSANDRA_GC=parallel)
#   CASSANDRA_START_TIMEOUT (120 s)  CASSANDRA_SKIP_SYNC (true: no fsync, test data only)
set -euo pipefail
LOG_TAG=cassandra
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Newest first. Maven Central has no 5.0 binary tarball (org.apache.cassandra:apache-cassandra
# stops at 4.0-alpha2 there), so the node is assembled from cassandra-all and its runtime
# dependencies, which Central does serve; the conf files are generated below.
CASSANDRA_VERSIONS="${CASSANDRA_VERSIONS:-5.0.9 5.0.8}"

cassandra_home_for() { echo "$QUIRE_SERVERS_DIR/cassandra-$1"; }

installed_home() {
  local v
  for v in $CASSANDRA_VERSIONS; do
    if [ -f "$(cassandra_home_for "$v")/.installed" ]; then cassandra_home_for "$v"; return 0; fi
  done
  return 1
}

cmd_install() {
  local home
  if home="$(installed_home)"; then
    log "already installed: $home ($(ls "$home/lib" | wc -l) jars)"
    return 0
  fi
  ensure_toolchain
  mkdir -p "$QUIRE_SERVERS_DIR"
  exec 8>"$QUIRE_SERVERS_DIR/.cassandra-install.lock"
  flock 8
  if home="$(installed_home)"; then log "installed meanwhile: $home"; return 0; fi
  local t0 v
  t0=$(now_ms)
  for v in $CASSANDRA_VERSIONS; do
    home="$(cassandra_home_for "$v")"
    log "installing Apache Cassandra $v into $home (org.apache.cassandra:cassandra-all:$v + runtime deps from Maven Central)"
    rm -rf "$home.tmp"
    mkdir -p "$home.tmp"
    cat >"$home.tmp/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>quire.test-servers</groupId>
  <artifactId>cassandra-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$v</version>
    </dependency>
  </dependencies>
</project>
POM
    if mvn -q -B -f "$home.tmp/pom.xml" "$MVN_DEP_PLUGIN:copy-dependencies" \
         -DincludeScope=runtime -DoutputDirectory="$home.tmp/lib" >"$home.tmp/mvn.log" 2>&1 \
       && [ -f "$home.tmp/lib/cassandra-all-$v.jar" ]; then
      # Jars for other operating systems / CPUs are of no use here.
      rm -f "$home.tmp"/lib/*-osx-*.jar "$home.tmp"/lib/*-windows-*.jar "$home.tmp"/lib/*-linux-riscv64.jar
      echo "$v" >"$home.tmp/.installed"
      rm -rf "$home"
      mv "$home.tmp" "$home"
      log "installed Cassandra $v: $(ls "$home/lib" | wc -l) jars, $(du -sh "$home/lib" | cut -f1) in $(elapsed_s "$t0")s"
      return 0
    fi
    log "Cassandra $v did not resolve:"
    tail -n 5 "$home.tmp/mvn.log" >&2 || true
    rm -rf "$home.tmp"
  done
  die "no Cassandra version of [$CASSANDRA_VERSIONS] could be fetched from Maven Central"
}

# ---- node settings -------------------------------------------------------------------------
node_setup() {
  NODE="${1:-node1}"
  [[ "$NODE" =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad node name: $NODE"
  NODE_DIR="$QUIRE_SERVERS_DIR/cassandra-nodes/$NODE"
  PIDFILE="$NODE_DIR/cassandra.pid"
  LOGFILE="$NODE_DIR/logs/cassandra.log"
  LISTEN="${CASSANDRA_LISTEN:-127.0.0.1}"
  SEEDS="${CASSANDRA_SEEDS:-$LISTEN}"
  TOKEN="${CASSANDRA_INITIAL_TOKEN:-0}"
  PORT="${CASSANDRA_PORT:-9042}"
  STORAGE_PORT="${CASSANDRA_STORAGE_PORT:-7000}"
  JMX_PORT="${CASSANDRA_JMX_PORT:-7199}"
  DC="${CASSANDRA_DC:-datacenter1}"
  RACK="${CASSANDRA_RACK:-rack1}"
  CLUSTER="${CASSANDRA_CLUSTER:-quire-test}"
  # Marks the JVM as ours (checked together with the pidfile; survives other checkouts).
  MARKER="-Dquire.testserver=cassandra:$NODE_DIR"
}

cql_ready() { # host port: a CQL v4 OPTIONS frame must get a SUPPORTED (0x06) answer
  local hex
  hex="$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "\x04\x00\x00\x00\x05\x00\x00\x00\x00" >&3
        head -c 9 <&3 | od -An -tx1' "$1" "$2" 2>/dev/null | tr -d ' \n')" || return 1
  [[ "$hex" =~ ^84[0-9a-f]{6}06 ]]
}

write_conf() {
  local conf="$NODE_DIR/conf"
  mkdir -p "$conf" "$NODE_DIR"/{data,commitlog,hints,saved_caches,cdc_raw,logs}
  # Only the keys that differ from the built-in defaults of Cassandra 5.0 (Config.java).
  cat >"$conf/cassandra.yaml" <<YAML
# Generated by packages/test-servers/bin/cassandra.sh for node $NODE: rewritten on every start.
cluster_name: '$CLUSTER'
num_tokens: 1
initial_token: $TOKEN
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
auto_bootstrap: false
data_file_directories:
  - $NODE_DIR/data
commitlog_directory: $NODE_DIR/commitlog
hints_directory: $NODE_DIR/hints
saved_caches_directory: $NODE_DIR/saved_caches
cdc_raw_directory: $NODE_DIR/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$SEEDS"
listen_address: $LISTEN
rpc_address: $LISTEN
storage_port: $STORAGE_PORT
native_transport_port: $PORT
start_native_transport: true
endpoint_snitch: GossipingPropertyFileSnitch
auto_snapshot: false
snapshot_before_compaction: false
# A fresh test cluster needs no compatibility with 4.x sstables / messaging.
storage_compatibility_mode: NONE
paxos_variant: v2
concurrent_compactors: 1
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
YAML
  printf 'dc=%s\nrack=%s\n' "$DC" "$RACK" >"$conf/cassandra-rackdc.properties"
  cat >"$conf/logback.xml" <<'XML'
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <logger name="org.apache.cassandra" level="INFO"/>
  <logger name="com.thinkaurelius.thrift" level="ERROR"/>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
XML
}

java_opts() {
  local home="$1" heap="${MAX_HEAP_SIZE:-2G}" newsize="${HEAP_NEWSIZE:-128M}"
  JOPTS=(
    "$MARKER"
    -ea
    -Xms"$heap" -Xmx"$heap"
    -Xss256k
    -XX:+UseThreadPriorities -XX:+UseTLAB -XX:+ResizeTLAB -XX:+PerfDisableSharedMem
    -XX:+CrashOnOutOfMemoryError -XX:StringTableSize=1000003
    -XX:ErrorFile="$NODE_DIR/logs/hs_err_pid%p.log"
    -Djava.net.preferIPv4Stack=true
    -Dcassandra.available_processors="$(nproc)"
  )
  if [ "${CASSANDRA_GC:-g1}" = parallel ]; then
    JOPTS+=(-XX:+UseParallelGC -Xmn"$newsize")
  else
    # G1 sizes the young generation itself (Cassandra refuses -Xmn with G1): HEAP_NEWSIZE unused.
    JOPTS+=(-XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1
            -XX:G1RSetUpdatingPauseTimePercent=5 -XX:MaxGCPauseMillis=300)
  fi
  # Module access Cassandra 5.0 needs on Java 17.
  JOPTS+=(
    -Djdk.attach.allowAttachSelf=true
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports java.base/jdk.internal.ref=ALL-UNNAMED
    --add-exports java.base/sun.nio.ch=ALL-UNNAMED
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports java.sql/java.sql=ALL-UNNAMED
    --add-exports java.base/java.lang.ref=ALL-UNNAMED
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-opens java.base/java.lang.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
    --add-opens java.base/java.nio=ALL-UNNAMED
    -Dio.netty.tryReflectionSetAccessible=true
    -Dio.netty.allocator.useCacheForAllThreads=true
    -Dio.netty.allocator.maxOrder=11
  )
  local jamm
  jamm="$(ls "$home"/lib/jamm-*.jar 2>/dev/null | head -n1 || true)"
  [ -n "$jamm" ] && JOPTS+=("-javaagent:$jamm")
  # JMX on loopback only, no auth (what cassandra-env.sh does with LOCAL_JMX=yes).
  JOPTS+=(
    -Dcassandra.jmx.local.port="$JMX_PORT"
    -Dcom.sun.management.jmxremote.authenticate=false
  )
  # Fast single-node test start-up (no gossip settling, short ring delay, unsafe system tables).
  JOPTS+=(
    -Dcassandra.skip_wait_for_gossip_to_settle=0
    -Dcassandra.ring_delay_ms=1000
    -Dcassandra.unsafesystem=true
    -Dcassandra.superuser_setup_delay_ms=0
    -Dcassandra.test.ignore_sigar=true
  )
  if [ "${CASSANDRA_SKIP_SYNC:-true}" = true ]; then JOPTS+=(-Dcassandra.skip_sync=true); fi
  JOPTS+=(
    -Dcassandra.config="file://$NODE_DIR/conf/cassandra.yaml"
    -Dlogback.configurationFile="$NODE_DIR/conf/logback.xml"
    -Dcassandra.logdir="$NODE_DIR/logs"
    -Dcassandra.storagedir="$NODE_DIR/data"
    -Dcassandra-foreground=yes
  )
  # shellcheck disable=SC2206
  [ -n "${JVM_EXTRA_OPTS:-}" ] && JOPTS+=($JVM_EXTRA_OPTS)
  return 0
}

log_tail() {
  if [ -f "$LOGFILE" ]; then
    echo "----- last 60 lines of $LOGFILE -----" >&2
    tail -n 60 "$LOGFILE" >&2
    echo "-----" >&2
  fi
}

wait_ready() { # pid t0
  local pid="$1" t0="$2" limit="${CASSANDRA_START_TIMEOUT:-120}" last=-1 s other
  while :; do
    if cql_ready "$LISTEN" "$PORT"; then
      other="$(listener_pid "$LISTEN" "$PORT")"
      [ "$other" = "$pid" ] || die "CQL on $LISTEN:$PORT answers, but from pid ${other:-?}, not node $NODE ($pid)"
      log "node $NODE ready: CQL on $LISTEN:$PORT after $(elapsed_s "$t0")s (pid $pid)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log_tail
      die "Cassandra node $NODE (pid $pid) exited during start-up after $(elapsed_s "$t0")s; log: $LOGFILE"
    fi
    s=$(( ($(now_ms) - t0) / 1000 ))
    if [ "$s" -ge "$limit" ]; then
      log_tail
      die "Cassandra node $NODE did not answer CQL on $LISTEN:$PORT within ${limit}s (pid $pid still running; log: $LOGFILE)"
    fi
    if [ $(( s / 5 )) -ne "$last" ]; then last=$(( s / 5 )); log "waiting for CQL on $LISTEN:$PORT ... ${s}s"; fi
    sleep 0.5
  done
}

cmd_start() {
  node_setup "${1:-}"
  local t0 pid other home
  t0=$(now_ms)
  mkdir -p "$NODE_DIR"
  exec 9>"$NODE_DIR/.start.lock"
  flock 9
  if pid="$(pid_is "$PIDFILE" "$MARKER")"; then
    log "node $NODE already running (pid $pid), reusing it"
    wait_ready "$pid" "$t0"
    report_result reused
    return 0
  fi
  if port_busy "$LISTEN" "$PORT"; then
    other="$(listener_pid "$LISTEN" "$PORT")"
    if [ -n "$other" ] && cmdline_of "$other" | grep -qF -- "-Dquire.testserver=cassandra:" && cql_ready "$LISTEN" "$PORT"; then
      log "a Quire test Cassandra from elsewhere already serves $LISTEN:$PORT (pid $other: $(cmdline_of "$other" | grep -o -- '-Dquire.testserver=[^ ]*')), reusing it"
      report_result reused
      return 0
    fi
    die "port $LISTEN:$PORT is taken by something else (pid ${other:-?}: $(cmdline_of "${other:-0}" | cut -c1-200)); set CASSANDRA_PORT or stop it"
  fi
  port_busy "$LISTEN" "$STORAGE_PORT" && die "storage port $LISTEN:$STORAGE_PORT is taken (set CASSANDRA_STORAGE_PORT)"
  port_busy 127.0.0.1 "$JMX_PORT" && die "JMX port $JMX_PORT is taken (set CASSANDRA_JMX_PORT)"

  cmd_install
  home="$(installed_home)" || die "Cassandra is not installed"
  write_conf
  java_opts "$home"
  local java="$QUIRE_JAVA_HOME/bin/java"
  [ -x "$java" ] || die "no java at $java (set QUIRE_JAVA_HOME to a Java 17 home)"
  {
    echo "===== $(date -Is) starting node $NODE ($(cat "$home/.installed")) on $LISTEN:$PORT ====="
  } >>"$LOGFILE"
  log "starting Cassandra $(cat "$home/.installed") node $NODE: CQL $LISTEN:$PORT, storage $STORAGE_PORT, JMX $JMX_PORT, heap ${MAX_HEAP_SIZE:-2G}, dir $NODE_DIR"
  # Its own session, so it outlives the caller (tests reuse it); stdin closed, output to the log.
  MALLOC_ARENA_MAX=4 setsid "$java" "${JOPTS[@]}" -cp "$NODE_DIR/conf:$home/lib/*" \
    org.apache.cassandra.service.CassandraDaemon </dev/null >>"$LOGFILE" 2>&1 8>&- 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  wait_ready "$pid" "$t0"
  log "start took $(elapsed_s "$t0")s"
  report_result started
}

cmd_stop() {
  node_setup "${1:-}"
  local pid
  if pid="$(pid_is "$PIDFILE" "$MARKER")"; then
    log "stopping node $NODE (pid $pid)"
    stop_pid "$pid" "Cassandra node $NODE" "${CASSANDRA_STOP_TIMEOUT:-60}"
  else
    log "node $NODE is not running (no live pidfile $PIDFILE)"
  fi
  rm -f "$PIDFILE"
}

cmd_status() {
  node_setup "${1:-}"
  local pid
  if pid="$(pid_is "$PIDFILE" "$MARKER")"; then
    if cql_ready "$LISTEN" "$PORT"; then echo "running pid=$pid cql=$LISTEN:$PORT dc=$DC dir=$NODE_DIR"; return 0; fi
    echo "starting pid=$pid cql=$LISTEN:$PORT (not answering CQL yet)"; return 3
  fi
  if cql_ready "$LISTEN" "$PORT"; then echo "a CQL server answers on $LISTEN:$PORT but was not started from $NODE_DIR"; return 0; fi
  echo "stopped"; return 3
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  status) cmd_status "${2:-}" ;;
  cqlsh-ready) node_setup "${2:-}"; cql_ready "$LISTEN" "$PORT" ;;
  wipe) cmd_stop "${2:-}"; log "deleting $NODE_DIR"; rm -rf "$NODE_DIR" ;;
  logs) node_setup "${2:-}"; tail -n "${LINES:-100}" "$LOGFILE" ;;
  *) echo "usage: $0 {install|start|stop|status|cqlsh-ready|wipe|logs} [node]" >&2; exit 2 ;;
esac
