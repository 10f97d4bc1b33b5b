package peer

import (
	"context"
	"fmt"
	"net"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
	"golang.org/x/sys/unix"
)

// gnetServer is the echo server written with gnet, an event-loop library:
// it runs one event loop per core (WithMulticore), which is how gnet is
// normally deployed and what a Go programmer reaching for it would get.
type gnetServer struct {
	gnet.BuiltinEventEngine

	eng   gnet.Engine
	addr  string
	ready chan error
	done  chan error
}

// StartGnet starts the gnet echo server.
func StartGnet(addr string) (Server, error) {
	s := &gnetServer{ready: make(chan error, 1), done: make(chan error, 1)}
	go func() {
		err := gnet.Run(s, "tcp://"+addr,
			gnet.WithMulticore(true),
			gnet.WithLogLevel(logging.ErrorLevel))
		if err == nil {
			err = fmt.Errorf("gnet engine stopped")
		}
		// Whichever of the two is still listening hears why Run returned.
		select {
		case s.ready <- err:
		default:
		}
		s.done <- err
	}()
	if err := <-s.ready; err != nil {
		return nil, err
	}
	return s, nil
}

// OnBoot learns the real port: with port 0 only the listening socket knows
// it, so ask that socket (through a duplicate gnet hands out).
func (s *gnetServer) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	fd, err := eng.Dup()
	if err != nil {
		s.ready <- err
		return gnet.Shutdown
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		s.ready <- err
		return gnet.Shutdown
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		s.addr = net.JoinHostPort(net.IP(sa.Addr[:]).String(), fmt.Sprint(sa.Port))
	case *unix.SockaddrInet6:
		s.addr = net.JoinHostPort(net.IP(sa.Addr[:]).String(), fmt.Sprint(sa.Port))
	default:
		s.ready <- fmt.Errorf("listener has unexpected address %T", sa)
		return gnet.Shutdown
	}
	s.ready <- nil
	return gnet.None
}

// OnTraffic echoes whatever arrived; gnet queues what the socket does not
// take at once and flushes it when the socket is writable again.
func (s *gnetServer) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Next(-1)
	if _, err := c.Write(buf); err != nil {
		return gnet.Close
	}
	return gnet.None
}

func (s *gnetServer) Addr() string       { return s.addr }
func (s *gnetServer) Done() <-chan error { return s.done }

func (s *gnetServer) Close() error {
	return s.eng.Stop(context.Background())
}
