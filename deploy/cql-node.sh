#!/usr/bin/env bash
# A local single-node CQL database for Quiver's ScyllaDB backend tests.
#
#   deploy/cql-node.sh start    # starts (or finds) the node; prints host:port last
#   deploy/cql-node.sh stop     # stops it and waits until it has exited
#   deploy/cql-node.sh status   # prints host:port and exits 0 if it answers CQL
#   deploy/cql-node.sh wipe     # stops it and deletes its data
#
# ScyllaDB needs Docker or its own packages, which this kind of machine
# cannot run. Apache Cassandra speaks the same CQL protocol, and the driver
# Quiver uses supports both, so the tests run against Cassandra 5.0 started
# straight from its Maven Central artifact on the machine's Java 17.
#
# Environment (all optional):
#   CQL_PORT             native (CQL) port, default 9042
#   CQL_STORAGE_PORT     inter-node port, default 17000 (avoids clashes on 7000)
#   CQL_HEAP             JVM heap, default 768M (the machine is shared)
#   CQL_START_TIMEOUT    seconds to wait for CQL, default 240
#   CASSANDRA_VERSION    default 5.0.5
#   QUIVER_CQL_HOME      cache root, default ${XDG_CACHE_HOME:-$HOME/.cache}/quiver/cassandra
set -euo pipefail

CQL_HOST=127.0.0.1
CQL_PORT=${CQL_PORT:-9042}
STORAGE_PORT=${CQL_STORAGE_PORT:-17000}
HEAP=${CQL_HEAP:-768M}
START_TIMEOUT=${CQL_START_TIMEOUT:-240}
VERSION=${CASSANDRA_VERSION:-5.0.5}
HOME_DIR=${QUIVER_CQL_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/quiver/cassandra}
# One directory per port, so two nodes on different ports never share data,
# and stop/status find the pid file of the node on CQL_PORT.
NODE_DIR=$HOME_DIR/node-$CQL_PORT
PID_FILE=$NODE_DIR/cassandra.pid
LOG_FILE=$NODE_DIR/logs/stdout.log
CLASSPATH_FILE=$HOME_DIR/classpath-$VERSION.txt

log() { echo "cql-node: $*" >&2; }

# Resolves cassandra-all's runtime classpath once into the cache, with Maven
# itself (the jars land in a private local repository under the cache).
fetch_classpath() {
  [[ -s $CLASSPATH_FILE ]] && return 0
  command -v mvn >/dev/null || { log "mvn not found; install Maven (apt-get install maven)"; exit 1; }
  local work=$HOME_DIR/resolve-$VERSION
  mkdir -p "$work"
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>quiver.local</groupId>
  <artifactId>cql-node</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
  log "resolving org.apache.cassandra:cassandra-all:$VERSION with Maven (first run only)"
  # Maven prints colour codes even in batch mode; strip them from the log.
  mvn -B -q -Dstyle.color=never -f "$work/pom.xml" -Dmaven.repo.local="$HOME_DIR/m2" \
    dependency:build-classpath -Dmdep.includeScope=runtime \
    -Dmdep.outputFile="$CLASSPATH_FILE.tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
  mv "$CLASSPATH_FILE.tmp" "$CLASSPATH_FILE"
}

write_config() {
  mkdir -p "$NODE_DIR"/{conf,data,commitlog,saved_caches,hints,cdc_raw,logs}
  cat >"$NODE_DIR/conf/cassandra.yaml" <<YAML
# Written by deploy/cql-node.sh: a throwaway single node on loopback.
cluster_name: quiver-local
num_tokens: 1
initial_token: 0
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$CQL_HOST:$STORAGE_PORT"
listen_address: $CQL_HOST
rpc_address: $CQL_HOST
storage_port: $STORAGE_PORT
native_transport_port: $CQL_PORT
start_native_transport: true
data_file_directories: [$NODE_DIR/data]
commitlog_directory: $NODE_DIR/commitlog
saved_caches_directory: $NODE_DIR/saved_caches
hints_directory: $NODE_DIR/hints
cdc_raw_directory: $NODE_DIR/cdc_raw
# A test node: group the commit log fsyncs (periodic) instead of one per
# write; ScyllaDB in production has its own commit log policy.
commitlog_sync: periodic
commitlog_sync_period: 10000ms
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
disk_failure_policy: stop
commit_failure_policy: stop
auto_snapshot: false
snapshot_on_duplicate_row_detection: false
dynamic_snitch: false
read_request_timeout: 5000ms
write_request_timeout: 2000ms
cas_contention_timeout: 1000ms
# The backend writes a channel's messages in single-partition batches of up
# to 32 KiB of payload; keep the log quiet about them.
batch_size_warn_threshold: 64KiB
batch_size_fail_threshold: 1024KiB
YAML
  cat >"$NODE_DIR/conf/logback.xml" <<XML
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$NODE_DIR/logs/system.log</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
  <logger name="org.apache.cassandra" level="INFO"/>
</configuration>
XML
}

# Whether CQL answers: sends an OPTIONS frame (protocol v4, stream 0) and
# expects a SUPPORTED frame (opcode 0x06) back. A bare TCP connect is not
# enough: the port opens a moment before the node serves requests.
cql_answers() {
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "\x04\x00\x00\x00\x05\x00\x00\x00\x00" >&3
    head -c 5 <&3 | od -An -tx1 | tr -d " \n" | grep -qx "8400000006"
  ' "$CQL_HOST" "$CQL_PORT" 2>/dev/null
}

running_pid() {
  [[ -f $PID_FILE ]] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

start() {
  if running_pid >/dev/null && cql_answers; then
    echo "$CQL_HOST:$CQL_PORT"
    return 0
  fi
  if ! running_pid >/dev/null; then
    if cql_answers; then
      log "something else already serves CQL on $CQL_HOST:$CQL_PORT; using it"
      echo "$CQL_HOST:$CQL_PORT"
      return 0
    fi
    command -v java >/dev/null || { log "java not found; install a Java 17 runtime"; exit 1; }
    fetch_classpath
    write_config
    local jvm=(
      -Xms"$HEAP" -Xmx"$HEAP" -Xss512k
      -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxGCPauseMillis=300
      -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath="$NODE_DIR/logs"
      # Java 17 module flags, as in Cassandra 5.0's conf/jvm17-server.options.
      -Djdk.attach.allowAttachSelf=true
      --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
      --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
      --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
      --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
      --add-exports java.sql/java.sql=ALL-UNNAMED
      --add-exports java.base/java.lang.ref=ALL-UNNAMED
      --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
      --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
      --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
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
      --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
      --add-opens java.base/java.lang=ALL-UNNAMED
      --add-opens java.base/java.util=ALL-UNNAMED
      -Dio.netty.tryReflectionSetAccessible=true
      # Where to find config and data.
      -Dcassandra.config="file://$NODE_DIR/conf/cassandra.yaml"
      -Dlogback.configurationFile="file://$NODE_DIR/conf/logback.xml"
      -Dcassandra.storagedir="$NODE_DIR"
      -Dcassandra.logdir="$NODE_DIR/logs"
      -Dcassandra-foreground=yes
      # One node, its own seed: nothing to wait for or bootstrap from.
      -Dcassandra.skip_wait_for_gossip_to_settle=0
      -Dcassandra.ring_delay_ms=0
      -Dcassandra.auto_bootstrap=false
      -Dcassandra.superuser_setup_delay_ms=0
      -Dcassandra.jmx.local.port=$((STORAGE_PORT + 199))
      -Dcom.sun.management.jmxremote.authenticate=false
    )
    log "starting Cassandra $VERSION on $CQL_HOST:$CQL_PORT (data in $NODE_DIR)"
    # setsid: the node outlives this script and the shell that ran it.
    setsid java "${jvm[@]}" -cp "$NODE_DIR/conf:$(cat "$CLASSPATH_FILE")" \
      org.apache.cassandra.service.CassandraDaemon >"$LOG_FILE" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until cql_answers; do
    if ! running_pid >/dev/null; then
      log "Cassandra exited during startup; last lines of its logs:"
      tail -n 30 "$LOG_FILE" "$NODE_DIR/logs/system.log" >&2 2>/dev/null || true
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "CQL did not answer within ${START_TIMEOUT}s; see $NODE_DIR/logs/system.log"
      exit 1
    fi
    sleep 1
  done
  log "CQL answers on $CQL_HOST:$CQL_PORT"
  echo "$CQL_HOST:$CQL_PORT"
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$PID_FILE"
    log "not running (port $CQL_PORT)"
    return 0
  fi
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PID_FILE"; log "stopped"; return 0; }
    sleep 1
  done
  log "still running after 60s; killing pid $pid"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PID_FILE"
}

status() {
  if cql_answers; then
    echo "$CQL_HOST:$CQL_PORT"
    return 0
  fi
  if running_pid >/dev/null; then
    log "process $(cat "$PID_FILE") is up but CQL does not answer yet"
  else
    log "not running (port $CQL_PORT)"
  fi
  return 1
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  wipe) stop; rm -rf "$NODE_DIR"; log "wiped $NODE_DIR" ;;
  *) echo "usage: $0 start|stop|status|wipe" >&2; exit 2 ;;
esac
