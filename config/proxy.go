package config

import (
	"time"

	"github.com/hashicorp/hcl/v2"
)

// defaultConnectTimeout is systemd-socket-proxyd's connect timeout.
const defaultConnectTimeout = 5 * time.Second

func (d *decoder) proxy(fp *fileProxy, s *Service) (*Proxy, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	add := func(more hcl.Diagnostics) { diags = append(diags, more...) }
	p := &Proxy{}

	a, err := ParseAddress(fp.Backend)
	switch {
	case absent(fp.BackendRange):
	case err != nil:
		add(hcl.Diagnostics{diagf(fp.BackendRange, "Invalid backend address", "bad address %q: %s.", fp.Backend, err)})
	case a.Kind != KindTCP && a.Kind != KindUnix:
		add(hcl.Diagnostics{diagf(fp.BackendRange, "Invalid backend address",
			"backend = %q must be a TCP or UNIX stream address.", fp.Backend)})
	case a.Kind == KindTCP && a.Port == 0:
		add(hcl.Diagnostics{diagf(fp.BackendRange, "Invalid backend address",
			"backend = %q: port 0 cannot be connected to.", fp.Backend)})
	case a.Kind == KindTCP && a.Host == "":
		// Dialing ":8000" reaches some local address; say which.
		add(hcl.Diagnostics{diagf(fp.BackendRange, "Invalid backend address",
			"backend = %q needs a host, such as \"127.0.0.1:%d\".", fp.Backend, a.Port)})
	default:
		p.Backend = a
		for _, l := range s.Listen {
			if l.Key() == a.Key() {
				add(hcl.Diagnostics{diagf(fp.BackendRange, "Proxy loop",
					"backend %q is this service's own listen address at %s.", fp.Backend, at(l.Range))})
			}
		}
	}

	var more hcl.Diagnostics
	p.ConnectTimeout, more = duration(fp.ConnectTimeout, fp.ConnectTimeoutRange, "connect_timeout", defaultConnectTimeout)
	add(more)
	if more == nil && p.ConnectTimeout == 0 {
		add(hcl.Diagnostics{diagf(fp.ConnectTimeoutRange, "Invalid duration", "connect_timeout must be more than 0s.")})
	}
	p.ConnectRetry, more = duration(fp.ConnectRetry, fp.ConnectRetryRange, "connect_retry", 0)
	add(more)
	p.IdleTimeout, more = duration(fp.IdleTimeout, fp.IdleTimeoutRange, "idle_timeout", 0)
	add(more)
	var pp string
	pp, more = oneOf(fp.ProxyProtocol, fp.ProxyProtocolRange, "proxy_protocol", "", "", "v1", "v2")
	add(more)
	p.ProxyProtocol = ProxyProtocol(pp)

	if fs := fp.Start; fs != nil {
		st := &ProxyStart{}
		st.Command, more = d.command(fs.Command, fs.DefRange)
		add(more)
		if fs.User != nil {
			st.User, more = d.user(*fs.User, fs.UserRange, "user")
			add(more)
		}
		if fs.Group != nil {
			st.Group, more = d.group(*fs.Group, fs.GroupRange, "group")
			add(more)
		}
		st.Environment, more = environment(fs.Environment, fs.EnvironmentRange)
		add(more)
		st.StopWhenIdle, more = duration(fs.StopWhenIdle, fs.StopWhenIdleRange, "stop_when_idle", 0)
		add(more)
		st.StopTimeout, more = duration(fs.StopTimeout, fs.StopTimeoutRange, "stop_timeout", defaultStopTimeout)
		add(more)
		p.Start = st
	}
	return p, diags
}
