package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// validate runs the checks that need more than one block: unique service
// names, what each mode can listen on, and sockets claimed twice.
func validate(cfg *Config) hcl.Diagnostics {
	var diags hcl.Diagnostics
	names := map[string]*Service{}
	for _, s := range cfg.Services {
		if first, dup := names[s.Name]; dup {
			diags = append(diags, diagf(s.Range, "Duplicate service",
				"service %q is already defined at %s.", s.Name, at(first.Range)))
			continue
		}
		names[s.Name] = s
	}
	for _, s := range cfg.Services {
		diags = append(diags, validateListenKinds(s)...)
	}

	// One socket, one owner: a bare port and [::]:PORT are the same
	// socket, and so are /x and unix:///x (see Address.Key).
	type claim struct {
		service string
		rng     hcl.Range
	}
	claims := map[string]claim{}
	if cfg.Metrics != nil {
		claims[cfg.Metrics.Listen.Key()] = claim{"the metrics endpoint", hcl.Range{}}
	}
	if cfg.Control.Socket != "" {
		claims["unix "+cfg.Control.Socket] = claim{"the control socket", hcl.Range{}}
	}
	for _, s := range cfg.Services {
		for _, l := range s.Listen {
			if (l.Kind == KindTCP || l.Kind == KindUDP) && l.Port == 0 {
				continue // a fresh port each time
			}
			key := l.Key()
			if first, dup := claims[key]; dup {
				where := first.service
				if first.rng.Filename != "" {
					where = fmt.Sprintf("service %q at %s", first.service, at(first.rng))
				}
				diags = append(diags, diagf(l.Range, "Duplicate listen address",
					"%q is the same socket as %s.", l.Raw, where))
				continue
			}
			claims[key] = claim{s.Name, l.Range}
		}
	}
	return diags
}

// validateListenKinds checks each listen address against the service's
// mode: datagram sockets have no connections to accept, relay or hand
// over, so udp:// only goes to a program that owns the socket (exec with
// accept = false) or to a builtin.
func validateListenKinds(s *Service) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, l := range s.Listen {
		switch {
		case l.Kind == KindUDP && !(s.Mode == ModeBuiltin || (s.Mode == ModeExec && s.Exec != nil && !s.Exec.Accept)):
			diags = append(diags, diagf(l.Range, "Datagram socket in a stream service",
				"%q is a UDP socket; it needs exec with accept = false, or a builtin.", l.Raw))
		case l.Kind == KindHandoff && s.Mode == ModeExec && s.Exec != nil && !s.Exec.Accept:
			diags = append(diags, diagf(l.Range, "Handoff socket in a wait-mode service",
				"%q receives connections one by one; it cannot be handed to a program as a listening socket (accept = false).", l.Raw))
		}
	}
	return diags
}
