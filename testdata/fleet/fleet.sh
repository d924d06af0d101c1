#!/usr/bin/env bash
# A loopback fleet for a demo, started by `make fleet`: Prometheus (remote-write receiver),
# Alertmanager, 2 gateways, the router and 3 agents (host names fleet-host-1..3), all from the
# configs in this folder. State goes under ./var/fleet. Ctrl-C stops everything.
#
# DIST, ROUTER and CLI name the binaries (the Makefile sets them).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
DIST=${DIST:-_build/otelcol-buildmon}
ROUTER=${ROUTER:-_build-router/otelcol-router}
CLI=${CLI:-bin/buildmon}
VAR=${FLEET_VAR:-./var/fleet}
mkdir -p "$VAR"
VAR=$(cd "$VAR" && pwd)

pids=()
names=()
stop() {
	trap - INT TERM EXIT
	echo
	echo "stopping the fleet…"
	# Agents first (they flush to the router), then the router, the gateways, the backends.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[$i]}" 2>/dev/null || true
	done
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		wait "${pids[$i]}" 2>/dev/null || true
	done
	echo "stopped; logs and state are under $VAR"
}
trap stop INT TERM EXIT

# start NAME COMMAND...: runs COMMAND in the background with its output in $VAR/NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$VAR/$name.log" 2>&1 &
	pids+=($!)
	names+=("$name")
}

# wait_ready NAME URL: waits until URL answers 200 (60 s at most).
wait_ready() {
	for _ in $(seq 1 600); do
		if curl -fsS -o /dev/null "$2" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "$1 did not become ready at $2; see $VAR/$1.log" >&2
	exit 1
}

cat >"$VAR/prometheus.yml" <<'EOF'
global:
  evaluation_interval: 5s
# The fleet's queues can deliver two batches of one build in the other order (README).
storage:
  tsdb:
    out_of_order_time_window: 10m
EOF
cat >"$VAR/alertmanager.yml" <<'EOF'
route:
  receiver: log
  group_wait: 1s
  group_interval: 5s
receivers:
  - name: log
EOF
start prometheus prometheus --config.file="$VAR/prometheus.yml" --storage.tsdb.path="$VAR/prometheus" \
	--web.listen-address=127.0.0.1:9090 --web.enable-remote-write-receiver
start alertmanager prometheus-alertmanager --config.file="$VAR/alertmanager.yml" --storage.path="$VAR/alertmanager" \
	--web.listen-address=127.0.0.1:9093 --cluster.listen-address=
wait_ready prometheus http://127.0.0.1:9090/-/ready
wait_ready alertmanager http://127.0.0.1:9093/-/ready

for i in 1 2; do
	start "gateway-$i" env \
		BUILDMON_OTLP_ENDPOINT=127.0.0.1:441$((6 + i)) \
		BUILDMON_STATUS_ENDPOINT=127.0.0.1:442$i \
		BUILDMON_HEALTH_ENDPOINT=127.0.0.1:1314$i \
		BUILDMON_TELEMETRY_PORT=889$i \
		BUILDMON_DATA_DIR="$VAR/gateway-$i" \
		BUILDMON_REMOTE_WRITE_URL=http://127.0.0.1:9090/api/v1/write \
		BUILDMON_ALERTMANAGER_URL=http://127.0.0.1:9093 \
		"$DIST" --config "$here/gateway.yaml"
	wait_ready "gateway-$i" "http://127.0.0.1:1314$i/"
done

start router env \
	BUILDMON_OTLP_ENDPOINT=127.0.0.1:4317 \
	BUILDMON_HEALTH_ENDPOINT=127.0.0.1:13140 \
	"BUILDMON_GATEWAYS=[127.0.0.1:4417, 127.0.0.1:4418]" \
	"$ROUTER" --config "$here/router.yaml"
wait_ready router http://127.0.0.1:13140/

for i in 1 2 3; do
	start "agent-$i" env \
		BUILDMON_EVENTS_ENDPOINT=127.0.0.1:43${i}0 \
		BUILDMON_STATUS_ENDPOINT=127.0.0.1:43${i}1 \
		BUILDMON_HEALTH_ENDPOINT=127.0.0.1:1313$i \
		BUILDMON_TELEMETRY_PORT=888$i \
		BUILDMON_DATA_DIR="$VAR/agent-$i" \
		BUILDMON_HOST_NAME=fleet-host-$i \
		BUILDMON_ROUTER_ENDPOINT=127.0.0.1:4317 \
		"$DIST" --config "$here/agent.yaml"
	wait_ready "agent-$i" "http://127.0.0.1:1313$i/"
done

cat <<EOF

buildmon fleet on 127.0.0.1 (state and logs under $VAR):

  agents (one per build host)   events API            status API
    fleet-host-1                http://127.0.0.1:4310  http://127.0.0.1:4311
    fleet-host-2                http://127.0.0.1:4320  http://127.0.0.1:4321
    fleet-host-3                http://127.0.0.1:4330  http://127.0.0.1:4331
  router (OTLP gRPC)            127.0.0.1:4317 -> gateways 127.0.0.1:4417, 127.0.0.1:4418
  gateways                      status API http://127.0.0.1:4421, http://127.0.0.1:4422
  Prometheus                    http://127.0.0.1:9090  (e.g. build_progress_ratio, build_eta_seconds)
  Alertmanager                  http://127.0.0.1:9093

Run a build on fleet-host-2 and ask the central tier about it:
  export BUILDMON_EVENTS_URL=http://127.0.0.1:4320 BUILDMON_STATUS_URL=http://127.0.0.1:4321 BUILDMON_HOST=fleet-host-2 BUILDMON_BUILD_ID=demo-1
  $CLI start --pipeline web --phases 'BUILD:2,TEST:1'
  $CLI phase BUILD -- sh -c '$CLI step BUILD; sleep 2; $CLI step BUILD'
  $CLI status --gateways http://127.0.0.1:4421,http://127.0.0.1:4422

Ctrl-C stops the fleet.
EOF
wait -n "${pids[@]}" || true
echo "a part of the fleet exited; see the logs under $VAR" >&2
