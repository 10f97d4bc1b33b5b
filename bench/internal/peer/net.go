package peer

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// netServer is the echo server most Go programmers would write: the runtime's
// network poller (epoll on Linux, kqueue on the BSDs) stays hidden behind
// blocking calls, and each client gets its own goroutine and read buffer.
type netServer struct {
	ln   net.Listener
	done chan error

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// netBufSize is the per-client read buffer. It is part of what every idle
// client costs this server, next to the goroutine's stack.
const netBufSize = 4096

// StartNet starts the goroutine-per-connection echo server.
func StartNet(addr string) (Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &netServer{ln: ln, done: make(chan error, 1), conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func (s *netServer) Addr() string       { return s.ln.Addr().String() }
func (s *netServer) Done() <-chan error { return s.done }

func (s *netServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of descriptors and the like: say so, give the
			// clients a moment to leave, and keep serving.
			fmt.Fprintf(os.Stderr, "accept: %v\n", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !s.track(c) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go s.echo(c)
	}
}

// track records a client so Close can reach it; it refuses once the server
// is closing.
func (s *netServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *netServer) echo(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	buf := make([]byte, netBufSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *netServer) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}
