// Package httpserve runs an http.Server for the life of a context and
// leaves nothing of it running afterwards: the lifecycle acceptd's control
// socket and metrics endpoint share.
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Serve serves srv on ln until ctx is done, then shuts it down gracefully
// for at most grace (requests in flight see ctx cancelled; BaseContext is
// set to ctx) and closes it. It returns once every connection goroutine
// srv started has ended, which http.Server's Shutdown and Close do not
// wait for: nil after ctx is done, or the error that stopped ln. Serve
// sets srv.ConnState and srv.BaseContext; the caller leaves them nil.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration) error {
	var conns sync.WaitGroup
	srv.BaseContext = func(net.Listener) context.Context { return ctx }
	// StateNew is reported before srv.Serve can return, so no Add comes
	// after the Wait below.
	srv.ConnState = func(_ net.Conn, cs http.ConnState) {
		switch cs {
		case http.StateNew:
			conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			conns.Done()
		}
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		// The listener failed on its own; nothing more is accepted.
		srv.Close()
		conns.Wait()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	err := <-served
	conns.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
