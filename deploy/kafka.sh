#!/usr/bin/env bash
# Apache Kafka, single node in KRaft mode, from Maven Central jars (deploy/kafka/pom.xml).
# install | start | stop | status
source "$(dirname "$0")/lib.sh"

HERE="$MC_ROOT/deploy/kafka"
LIBS="$HERE/target/libs"
DIR="$MC_VAR_DIR/kafka"
CONF="$DIR/server.properties"
PIDFILE="$DIR/kafka.pid"

install() {
  apt_install kcat  # an independent client for the tests
  if ! ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1; then
    command -v mvn >/dev/null || apt_install maven
    command -v java >/dev/null || apt_install openjdk-17-jre-headless
    log "fetching Kafka jars from Maven Central"
    mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies >/dev/null
  fi
}

kafka_java() {
  java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dkafka.logs.dir="$DIR/logs" \
    -cp "$LIBS/*" "$@"
}

write_config() {
  mkdir -p "$DIR/data" "$DIR/logs"
  cat > "$CONF" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$MC_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$MC_KAFKA_PORT,CONTROLLER://127.0.0.1:$MC_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$MC_KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
CONF
}

broker_up() { (exec 3<>"/dev/tcp/127.0.0.1/$MC_KAFKA_PORT") 2>/dev/null; }

start() {
  install
  if pid_alive "$PIDFILE" && broker_up; then log "already up"; return 0; fi
  write_config
  if [ ! -f "$DIR/data/meta.properties" ]; then
    local cluster_id; cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid | tail -n 1)
    log "formatting KRaft storage (cluster $cluster_id)"
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$CONF" >/dev/null
  fi
  nohup java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dkafka.logs.dir="$DIR/logs" \
    -cp "$LIBS/*" kafka.Kafka "$CONF" >"$DIR/stdout.log" 2>&1 &
  echo $! > "$PIDFILE"
  wait_for kafka 120 broker_up
  log "up: 127.0.0.1:$MC_KAFKA_PORT"
}

stop() {
  if pid_alive "$PIDFILE"; then
    local pid; pid=$(cat "$PIDFILE")
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  log "stopped"
}

status() { broker_up && echo ok; }

"${1:-start}"
