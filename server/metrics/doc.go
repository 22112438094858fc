// Package metrics serves acceptd's counters for Prometheus (CONTRACT:
// Instances and counters, metrics), with
// github.com/prometheus/client_golang.
//
// The counters are not kept twice: a [Collector] reads the server's Status
// at scrape time and turns it into const metrics, so counting a connection
// costs the server nothing beyond its own atomics. The names follow the
// node_exporter systemd collector's socket metrics, so dashboards carry
// over:
//
//	acceptd_socket_accepted_connections_total{service}
//	acceptd_socket_current_connections{service}
//	acceptd_socket_refused_connections_total{service}
//	acceptd_socket_refused_connections_by_reason_total{service,reason}
//	acceptd_proxy_bytes_total{service,direction="in"|"out"}
//	acceptd_instance_exits_total{service,result}
//
// What a snapshot cannot give — distributions — comes from an [Observer]
// the server calls on its hot path:
//
//	acceptd_spawn_latency_seconds{service}        accept to exec
//	acceptd_connection_duration_seconds{service}  accept to close
//
// [Serve] exposes a registry on /metrics.
package metrics
