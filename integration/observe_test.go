package integration

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acceptd/acceptd/internal/testutil"
)

// TestObserveCountersStatusMetrics (issue 4): after N served, M refused by
// the limit and K refused by deny, all at once, status and metrics say N
// accepted and M+K refused, the reasons apart, and connected is back to 0;
// `acceptd status` prints it as systemctl does, live instances included.
func TestObserveCountersStatusMetrics(t *testing.T) {
	const n, m, k = 3, 4, 2
	d := startDaemon(t, `
metrics {
  listen = "127.0.0.1:{{PORT1}}"
}

service "obs" {
  listen          = ["127.0.0.1:{{PORT}}"]
  max_connections = 3
  deny            = ["127.0.0.2"]
  exec {
    `+prog("greet")+`
  }
}
`, daemonOpts{ports: 2})
	addr := d.addr(0)

	var held []net.Conn
	for i := 0; i < n; i++ {
		c := dialFrom(t, "127.0.0.1", addr)
		if !greeted(t, c) {
			t.Fatalf("client %d not served", i)
		}
		held = append(held, c)
	}

	// While the n instances run, status shows each with its pid.
	out, err := exec.Command(acceptdBin(), "status", "-control", d.control).CombinedOutput()
	if err != nil {
		t.Fatalf("acceptd status: %v\n%s", err, out)
	}
	text := regexp.MustCompile(`pid \d+  uid \d+  up \S+`).ReplaceAllString(string(out), "pid P  uid U  up T")
	text = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(text, "127.0.0.1:X")
	text = regexp.MustCompile(`obs@\d`).ReplaceAllString(text, "obs@N")
	want := `● obs — exec (per connection)
     Listen: 127.0.0.1:X (Stream)
   Accepted: 3; Connected: 3; Refused: 0
   Triggers: ● obs@N-127.0.0.1:X-127.0.0.1:X  pid P  uid U  up T
             ● obs@N-127.0.0.1:X-127.0.0.1:X  pid P  uid U  up T
             ● obs@N-127.0.0.1:X-127.0.0.1:X  pid P  uid U  up T
`
	if text != want {
		t.Errorf("acceptd status (normalised):\n%s\nwant:\n%s", text, want)
	}

	// m over the limit and k denied, all at the same time.
	var wg sync.WaitGroup
	for i := 0; i < m+k; i++ {
		from := "127.0.0.1"
		if i >= m {
			from = "127.0.0.2"
		}
		wg.Go(func() {
			if greeted(t, dialFrom(t, from, addr)) {
				t.Errorf("a client from %s was served", from)
			}
		})
	}
	wg.Wait()
	for _, c := range held {
		c.Close()
	}
	if !testutil.Poll(10*time.Second, func() bool {
		s := d.service("obs")
		return s.Connected == 0 && s.Refused == m+k
	}) {
		t.Fatalf("status after the clients left: %+v", d.service("obs"))
	}
	if s := d.service("obs"); s.Accepted != n {
		t.Errorf("accepted = %d; want %d", s.Accepted, n)
	}

	metrics := getMetrics(t, d.addr(1))
	for _, line := range []string{
		`acceptd_socket_accepted_connections_total{service="obs"} 3`,
		`acceptd_socket_current_connections{service="obs"} 0`,
		`acceptd_socket_refused_connections_total{service="obs"} 6`,
		`acceptd_socket_refused_connections_by_reason_total{reason="limit",service="obs"} 4`,
		`acceptd_socket_refused_connections_by_reason_total{reason="deny",service="obs"} 2`,
		`acceptd_spawn_latency_seconds_count{service="obs"} 3`,
		`acceptd_connection_duration_seconds_count{service="obs"} 3`,
		`acceptd_instance_exits_total{result="success",service="obs"} 3`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", metrics)
	}

	// A reload that removes the service removes its series too, the
	// histograms with the counters.
	cfg, err := os.ReadFile(d.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), `service "obs"`, `service "other"`, 1))
	if err := os.WriteFile(d.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(acceptdBin(), "reload", "-control", d.control).CombinedOutput(); err != nil {
		t.Fatalf("acceptd reload: %v\n%s", err, out)
	}
	c := dialFrom(t, "127.0.0.1", addr)
	if !greeted(t, c) {
		t.Fatal("the renamed service does not serve")
	}
	c.Close()
	testutil.WaitFor(t, 10*time.Second, "the renamed service's connection to end", func() bool {
		return d.service("other").Connected == 0
	})
	metrics = getMetrics(t, d.addr(1))
	if strings.Contains(metrics, `service="obs"`) {
		t.Errorf("metrics still name the removed service:\n%s", metrics)
	}
	if !strings.Contains(metrics, `acceptd_connection_duration_seconds_count{service="other"} 1`+"\n") {
		t.Errorf("metrics lack the new service's connection:\n%s", metrics)
	}
	d.stop()
}

func getMetrics(t *testing.T, addr string) string {
	t.Helper()
	resp, body := testutil.Get(t, nil, "http://"+addr+"/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	return string(body)
}
