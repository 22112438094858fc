package server

import (
	"context"
	"encoding/binary"
	"io"
	"time"
)

// builtinHandler serves inetd's internal services (RFC 862, 863, 867, 864,
// 868) on stream sockets.
type builtinHandler struct {
	kind string
	now  func() time.Time
}

// rfc868Epoch is 1900-01-01 in Unix time: the TIME protocol counts from it.
const rfc868Epoch = 2208988800

// chargenLine is the 72-character rotating pattern of RFC 864.
func chargenLine(start int) []byte {
	line := make([]byte, 74)
	for i := 0; i < 72; i++ {
		line[i] = byte(' ' + (start+i)%95)
	}
	line[72], line[73] = '\r', '\n'
	return line
}

func (h *builtinHandler) Handle(ctx context.Context, c *Conn, in *instance) outcome {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var o outcome
	switch h.kind {
	case "echo":
		n, err := io.Copy(c.Conn, c.Conn)
		o.in, o.out, o.err = n, n, err
	case "discard":
		n, err := io.Copy(io.Discard, c.Conn)
		o.in, o.err = n, err
	case "daytime":
		// RFC 867 leaves the format free; this is the one inetd uses.
		n, err := io.WriteString(c.Conn, h.now().Format("Mon Jan _2 15:04:05 2006")+"\r\n")
		o.out, o.err = int64(n), err
	case "time":
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(h.now().Unix()+rfc868Epoch))
		n, err := c.Write(b[:])
		o.out, o.err = int64(n), err
	case "chargen":
		for i := 0; ; i = (i + 1) % 95 {
			n, err := c.Write(chargenLine(i))
			o.out += int64(n)
			if err != nil {
				// The client closing is how chargen ends.
				break
			}
		}
	default:
		panic("unhandled builtin " + h.kind)
	}
	if o.err == io.EOF {
		o.err = nil
	}
	return o
}
