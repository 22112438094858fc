package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/acceptd/acceptd/internal/httpserve"
	"github.com/acceptd/acceptd/internal/sockfile"
	"github.com/acceptd/acceptd/server"
)

// Backend is what the control socket exposes of the running daemon.
type Backend interface {
	// Status returns a snapshot of every service, in the server's order.
	Status() server.Status
	// Reload reads the configuration again and applies it, or refuses it
	// and says why. ctx is cancelled when the asking client goes away or
	// the control server stops; a Backend may choose to finish anyway.
	Reload(ctx context.Context) server.ReloadResult
}

// DefaultMode is the control socket's permission bits when Listen is given
// a zero mode: only the daemon's own user may connect.
const DefaultMode os.FileMode = 0o600

// Limits and timeouts of the HTTP server. Clients are local and requests
// tiny; the limits only keep a broken or hostile client from holding
// resources.
const (
	maxBodyBytes      = 64 << 10
	maxHeaderBytes    = 16 << 10
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	// writeTimeout bounds a status reply; a reload reply gets
	// reloadTimeout instead, since a reload may bind sockets.
	writeTimeout  = 30 * time.Second
	reloadTimeout = 5 * time.Minute
	idleTimeout   = 60 * time.Second
	// shutdownGrace is how long Serve waits for requests in flight after
	// its context is done before closing their connections.
	shutdownGrace = 5 * time.Second
)

// Server is a bound control socket. Create it with Listen, run it with
// Serve; Close releases it when Serve is never called.
type Server struct {
	ln   *net.UnixListener
	path string
	// info identifies the socket file created by Listen, so that removing
	// it at the end never removes a file somebody else put there since.
	info os.FileInfo

	closeOnce sync.Once
	closeErr  error
}

// Listen binds the control socket at path with the permission bits mode
// (DefaultMode when 0). The parent directory is created with mode 0755 if
// it is missing. A socket file left behind by a process that is gone is
// replaced; a socket somebody still listens on, or a file that is not a
// socket, is an error and left alone.
//
// The socket is bound under a temporary name, chmod'ed and then renamed
// into place, so that no client can connect while it still has the
// umask's permissions.
func Listen(path string, mode os.FileMode) (*Server, error) {
	if mode == 0 {
		mode = DefaultMode
	}
	if path == "" {
		return nil, errors.New("control socket: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := sockfile.ClearStale(path, "unix"); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	tmp := path + "~"
	if err := sockfile.ClearStale(tmp, "unix"); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	// The file is removed by Close, by identity, not by the listener that
	// only knows the temporary name.
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*Server, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode.Perm()); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	info, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &Server{ln: ln, path: path, info: info}, nil
}

// Path is the socket file's path.
func (s *Server) Path() string { return s.path }

// Close closes the listener and removes the socket file, if it is still
// the one Listen created. It is idempotent; Serve calls it on return.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.ln.Close()
		if fi, err := os.Lstat(s.path); err == nil && os.SameFile(fi, s.info) {
			if err := os.Remove(s.path); err != nil && s.closeErr == nil {
				s.closeErr = err
			}
		}
	})
	return s.closeErr
}

// Serve answers requests with b until ctx is done, then lets requests in
// flight finish for a few seconds (their contexts are already cancelled),
// closes the socket and removes its file. It returns once every goroutine
// it started has stopped: nil after ctx is done, or the error that stopped
// the listener.
func (s *Server) Serve(ctx context.Context, b Backend, log *zap.Logger) error {
	defer s.Close()
	if log == nil {
		log = zap.NewNop()
	}
	h := &handler{b: b, log: log}
	errLog, err := zap.NewStdLogAt(log.With(zap.String("component", "control")), zap.DebugLevel)
	if err != nil {
		// NewStdLogAt fails only for an invalid level, which DebugLevel is not.
		panic(err)
	}
	srv := &http.Server{
		Handler:           h.routes(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// Garbage from clients is logged at debug level only: it is the
		// client's problem, and a flood must not flood the journal.
		ErrorLog: errLog,
	}
	if err := httpserve.Serve(ctx, srv, s.ln, shutdownGrace); err != nil {
		return fmt.Errorf("control socket %s: %w", s.path, err)
	}
	return nil
}

// Serve is Listen followed by Server.Serve, for callers that need not
// bind before doing something else.
func Serve(ctx context.Context, path string, mode os.FileMode, b Backend, log *zap.Logger) error {
	s, err := Listen(path, mode)
	if err != nil {
		return err
	}
	return s.Serve(ctx, b, log)
}

// handler holds the routes of the API.
type handler struct {
	b   Backend
	log *zap.Logger
}

// errorReply is the body of every non-2xx reply.
type errorReply struct {
	Error string `json:"error"`
}

func (h *handler) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", h.status)
	mux.HandleFunc("POST /v1/reload", h.reload)
	// The method-less patterns catch the other methods on known paths, so
	// that they get a JSON 405 instead of the mux's plain text.
	mux.HandleFunc("/v1/status", methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("/v1/reload", methodNotAllowed("POST"))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorReply{Error: "no such endpoint: " + r.URL.Path})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		mux.ServeHTTP(w, r)
	})
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorReply{Error: "method " + r.Method + " not allowed; use " + allow})
	}
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	st := h.b.Status()
	if names := r.URL.Query()["service"]; len(names) > 0 {
		var err error
		if st, err = Filter(st, names); err != nil {
			writeJSON(w, http.StatusNotFound, errorReply{Error: err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, normalize(st))
}

func (h *handler) reload(w http.ResponseWriter, r *http.Request) {
	// The request has no body; read what a client sent anyway (bounded by
	// MaxBytesReader) so the connection can be reused.
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, errorReply{Error: "request body too large"})
		return
	}
	// Applying a reload may take longer than a status reply may.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(reloadTimeout))
	res := h.b.Reload(r.Context())
	h.log.Info("reload requested over the control socket",
		zap.Int("errors", len(res.Errors)), zap.Strings("added", res.Added),
		zap.Strings("removed", res.Removed), zap.Strings("changed", res.Changed))
	writeJSON(w, http.StatusOK, res)
}

// UnknownServiceError is returned by Filter for a name that is not a
// service of the Status.
type UnknownServiceError struct {
	Names []string
}

func (e *UnknownServiceError) Error() string {
	if len(e.Names) == 1 {
		return fmt.Sprintf("unknown service %q", e.Names[0])
	}
	return fmt.Sprintf("unknown services %q", e.Names)
}

// Filter keeps the services of st named in names, in st's order. Every
// name must exist, or the error is an *UnknownServiceError naming all
// that do not.
func Filter(st server.Status, names []string) (server.Status, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = false
	}
	var out server.Status
	for _, s := range st.Services {
		if _, ok := want[s.Name]; ok {
			want[s.Name] = true
			out.Services = append(out.Services, s)
		}
	}
	var unknown []string
	for _, n := range names {
		if !want[n] {
			unknown = append(unknown, n)
			want[n] = true // report each name once
		}
	}
	if len(unknown) > 0 {
		return server.Status{}, &UnknownServiceError{Names: unknown}
	}
	return out, nil
}

// normalize replaces nil slices by empty ones, so the JSON has the
// contract's shape ("listen": [], "instances": []) and never null.
func normalize(st server.Status) server.Status {
	out := server.Status{Services: make([]server.ServiceStatus, len(st.Services))}
	for i, s := range st.Services {
		if s.Listen == nil {
			s.Listen = []string{}
		}
		if s.Instances == nil {
			s.Instances = []server.InstanceStatus{}
		}
		out.Services[i] = s
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	// An encoding error here means the client went away; nothing to do.
	_ = json.NewEncoder(w).Encode(v)
}
