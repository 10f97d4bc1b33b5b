package peer

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

var starts = map[string]Start{"net": StartNet, "gnet": StartGnet, "epoll": StartEpoll}

// startPeer starts one peer on a free loopback port, for a parallel subtest.
func startPeer(t *testing.T, name string) Server {
	t.Helper()
	t.Parallel()
	if name == "epoll" && runtime.GOOS != "linux" {
		t.Skip("epoll is Linux-only")
	}
	srv, err := starts[name]("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestEcho checks the one promise every peer makes: what a client sends comes
// back unchanged, to many clients at once, including replies larger than a
// socket buffer takes in one write (which exercises the pending path).
func TestEcho(t *testing.T) {
	for name := range starts {
		t.Run(name, func(t *testing.T) {
			srv := startPeer(t, name)
			defer func() {
				if err := srv.Close(); err != nil {
					t.Error(err)
				}
			}()
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					size := 64 << (i % 15) // 64 B .. 1 MiB
					if err := roundTrip(srv.Addr(), size, i); err != nil {
						t.Errorf("client %d, %d bytes: %v", i, size, err)
					}
				}()
			}
			wg.Wait()
		})
	}
}

func roundTrip(addr string, size, client int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	want := make([]byte, size)
	for i := range want {
		want[i] = byte(i*7 + client)
	}
	// Write and read at the same time: a reply this large does not fit in
	// the socket buffers, so a client that wrote everything first would
	// deadlock against a correct server.
	werr := make(chan error, 1)
	go func() { _, err := c.Write(want); werr <- err }()
	got := make([]byte, size)
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if err := <-werr; err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return errors.New("echo differs from what was sent")
	}
	return nil
}

// TestSlowReader: a client that does not read its replies makes the server
// keep them aside while it serves others; what it keeps must be its own copy
// of those bytes, not a view of a buffer the next client's data lands in.
func TestSlowReader(t *testing.T) {
	for name := range starts {
		t.Run(name, func(t *testing.T) {
			srv := startPeer(t, name)
			defer srv.Close()
			slow, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer slow.Close()
			// A fixed small receive buffer: 16 MiB of replies cannot fit
			// in it and the server's send buffer together.
			if err := slow.(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
				t.Fatal(err)
			}
			slow.SetDeadline(time.Now().Add(30 * time.Second))
			want := bytes.Repeat([]byte("slow"), 4<<20)
			werr := make(chan error, 1)
			go func() { _, err := slow.Write(want); werr <- err }()

			// Meanwhile other clients keep the server busy.
			for i := range 50 {
				if err := roundTrip(srv.Addr(), 64<<10, i); err != nil {
					t.Fatal(err)
				}
			}
			got := make([]byte, len(want))
			if _, err := io.ReadFull(slow, got); err != nil {
				t.Fatal(err)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("the slow client's echo differs from what it sent")
			}
		})
	}
}

// TestCloseWithClients checks that Close returns while clients are still
// connected, and that those clients then see the connection end.
func TestCloseWithClients(t *testing.T) {
	for name := range starts {
		t.Run(name, func(t *testing.T) {
			srv := startPeer(t, name)
			c, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// One echo proves the server has accepted this client.
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
			if n, err := c.Read(make([]byte, 1)); err == nil {
				t.Fatalf("read %d bytes after Close, want end of connection", n)
			}
		})
	}
}
