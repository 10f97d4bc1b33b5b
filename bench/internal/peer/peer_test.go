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

// TestEcho checks the one promise every peer makes: what a client sends comes
// back unchanged, to many clients at once, including replies larger than a
// socket buffer takes in one write (which exercises the pending path).
func TestEcho(t *testing.T) {
	for name, start := range starts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if name == "epoll" && runtime.GOOS != "linux" {
				t.Skip("epoll is Linux-only")
			}
			srv, err := start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
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
					if err := roundTrip(srv.Addr(), size); err != nil {
						t.Errorf("client %d, %d bytes: %v", i, size, err)
					}
				}()
			}
			wg.Wait()
		})
	}
}

func roundTrip(addr string, size int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	want := make([]byte, size)
	for i := range want {
		want[i] = byte(i * 7)
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

// TestCloseWithClients checks that Close returns while clients are still
// connected, and that those clients then see the connection end.
func TestCloseWithClients(t *testing.T) {
	for name, start := range starts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if name == "epoll" && runtime.GOOS != "linux" {
				t.Skip("epoll is Linux-only")
			}
			srv, err := start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
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
