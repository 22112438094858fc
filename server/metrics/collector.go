package metrics

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acceptd/acceptd/server"
)

// Collector turns the server's Status into metrics at scrape time.
type Collector struct {
	status func() server.Status

	accepted, current, refused, refusedBy, bytes, exits *prometheus.Desc
}

// NewCollector returns a Collector that calls status once per scrape.
// status must be safe to call from any goroutine.
func NewCollector(status func() server.Status) *Collector {
	svc := []string{"service"}
	return &Collector{
		status: status,
		accepted: prometheus.NewDesc("acceptd_socket_accepted_connections_total",
			"Connections handed to the service since acceptd started.", svc, nil),
		current: prometheus.NewDesc("acceptd_socket_current_connections",
			"Connections of the service open now.", svc, nil),
		refused: prometheus.NewDesc("acceptd_socket_refused_connections_total",
			"Connections closed by acceptd without being served (limit, allow/deny, rate, failed spawn or connect).", svc, nil),
		refusedBy: prometheus.NewDesc("acceptd_socket_refused_connections_by_reason_total",
			"Refused connections by reason; they sum to acceptd_socket_refused_connections_total.",
			[]string{"service", "reason"}, nil),
		bytes: prometheus.NewDesc("acceptd_proxy_bytes_total",
			"Bytes relayed by a proxy service: in from clients, out to clients.",
			[]string{"service", "direction"}, nil),
		exits: prometheus.NewDesc("acceptd_instance_exits_total",
			"Ended instances by result.", []string{"service", "result"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.accepted, c.current, c.refused, c.refusedBy, c.bytes, c.exits} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.status().Services {
		ch <- prometheus.MustNewConstMetric(c.accepted, prometheus.CounterValue, float64(s.Accepted), s.Name)
		ch <- prometheus.MustNewConstMetric(c.current, prometheus.GaugeValue, float64(s.Connected), s.Name)
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(s.Refused), s.Name)
		for _, reason := range sortedKeys(s.RefusedReasons) {
			ch <- prometheus.MustNewConstMetric(c.refusedBy, prometheus.CounterValue,
				float64(s.RefusedReasons[reason]), s.Name, reason)
		}
		// Only relays move bytes; other modes would show a flat zero.
		if s.Mode == "proxy" || s.BytesIn != 0 || s.BytesOut != 0 {
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.BytesIn), s.Name, "in")
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.BytesOut), s.Name, "out")
		}
		for _, result := range sortedKeys(s.Exits) {
			ch <- prometheus.MustNewConstMetric(c.exits, prometheus.CounterValue,
				float64(s.Exits[result]), s.Name, result)
		}
	}
}

// sortedKeys keeps the order of the exposition stable (the registry sorts
// too, but a stable order makes the Collector's own tests simple).
func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
