package handoff

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSendReceive(t *testing.T) {
	dir, err := os.MkdirTemp("", "acd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "accept.sock")
	hl, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, %v; want 0600", fi.Mode(), err)
	}
	s, err := NewSender()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	client, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	accepted, err := tcp.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendConn(path, accepted.(*net.TCPConn)); err != nil {
		t.Fatal(err)
	}
	accepted.Close()

	got, err := hl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if got.RemoteAddr().String() != client.LocalAddr().String() {
		t.Errorf("received conn's remote = %v; want the client %v", got.RemoteAddr(), client.LocalAddr())
	}
	got.Write([]byte("hello"))
	got.Close()
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(client)
	if err != nil || string(b) != "hello" {
		t.Errorf("client read %q, %v", b, err)
	}

	// A receiver that is gone is an error for the sender, not a hang.
	hl.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after Close: %v", err)
	}
	if _, err := hl.Accept(); err == nil {
		t.Error("Accept after Close succeeded")
	}
	if err := s.Send(path, 0); err == nil {
		t.Error("Send to a closed receiver succeeded")
	}
}
