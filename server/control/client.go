package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"

	"github.com/acceptd/acceptd/server"
)

// Client talks to a control socket. Its methods are safe for concurrent
// use; Close releases its idle connection.
type Client struct {
	path string
	http *http.Client
}

// Dial returns a client for the control socket at path. It connects
// lazily: a daemon that is not running shows as an *UnreachableError from
// the first call.
func Dial(path string) *Client {
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns: 1,
	}
	return &Client{path: path, http: &http.Client{Transport: tr}}
}

// Close closes the client's idle connection.
func (c *Client) Close() {
	c.http.CloseIdleConnections()
}

// UnreachableError is returned when the control socket cannot be
// connected to: the daemon is not running, or the caller lacks permission.
type UnreachableError struct {
	Path string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the control socket %s: %v", e.Path, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// APIError is a reply with an error status from the daemon.
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string { return e.Message }

// Status asks for the status of the named services, or of every service
// when no name is given. An unknown name is an *APIError with status 404.
func (c *Client) Status(ctx context.Context, names ...string) (server.Status, error) {
	u := "http://acceptd/v1/status"
	if len(names) > 0 {
		u += "?" + url.Values{"service": names}.Encode()
	}
	var st server.Status
	err := c.do(ctx, http.MethodGet, u, &st)
	return st, err
}

// Reload asks the daemon to reload its configuration. A refused
// configuration is not an error: it is a result with Errors set.
func (c *Client) Reload(ctx context.Context) (server.ReloadResult, error) {
	var res server.ReloadResult
	err := c.do(ctx, http.MethodPost, "http://acceptd/v1/reload", &res)
	return res, err
}

func (c *Client) do(ctx context.Context, method, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return fmt.Errorf("control request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return &UnreachableError{Path: c.path, Err: dialReason(op)}
		}
		return fmt.Errorf("control socket %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("control socket %s: read reply: %w", c.path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e errorReply
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("control socket %s: %s", c.path, resp.Status)
		}
		return &APIError{StatusCode: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("control socket %s: decode reply: %w", c.path, err)
	}
	return nil
}

// dialReason strips a dial error down to its cause ("no such file or
// directory", "permission denied"): the path is already in the message.
func dialReason(op *net.OpError) error {
	var sc *os.SyscallError
	if errors.As(op.Err, &sc) {
		return sc.Err
	}
	return op.Err
}
