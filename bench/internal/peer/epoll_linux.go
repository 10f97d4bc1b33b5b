package peer

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// epollServer is the echo loop the workbook's stages build, written straight
// on Linux epoll(7) with no library in between: one thread, level-triggered
// readiness, non-blocking sockets, one shared read buffer, and a pending
// slice only for a client whose socket did not take a whole reply.
type epollServer struct {
	epfd   int
	lfd    int
	wakefd int // an eventfd that Close writes to, to end epoll_wait
	addr   string

	// pending maps every open client descriptor to the bytes still owed to
	// it (nil almost always).
	pending map[int][]byte
	buf     []byte
	done    chan error
	stopped chan struct{}
}

// StartEpoll starts the raw-epoll echo server.
func StartEpoll(addr string) (Server, error) {
	s := &epollServer{epfd: -1, lfd: -1, wakefd: -1,
		pending: make(map[int][]byte), buf: make([]byte, 64<<10),
		done: make(chan error, 1), stopped: make(chan struct{})}
	if err := s.setup(addr); err != nil {
		s.closeAll()
		return nil, err
	}
	go s.loop()
	return s, nil
}

func (s *epollServer) setup(addr string) error {
	ta, err := resolveTCP(addr)
	if err != nil {
		return err
	}
	var sa unix.Sockaddr
	family := unix.AF_INET
	if ip4 := ta.IP.To4(); ip4 != nil {
		sa4 := &unix.SockaddrInet4{Port: ta.Port}
		copy(sa4.Addr[:], ip4)
		sa = sa4
	} else {
		family = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{Port: ta.Port}
		copy(sa6.Addr[:], ta.IP.To16())
		sa = sa6
	}
	if s.lfd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if err := unix.SetsockoptInt(s.lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("setsockopt: %w", err)
	}
	if err := unix.Bind(s.lfd, sa); err != nil {
		return fmt.Errorf("bind %s: %w", addr, err)
	}
	if err := unix.Listen(s.lfd, unix.SOMAXCONN); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	bound, err := unix.Getsockname(s.lfd)
	if err != nil {
		return fmt.Errorf("getsockname: %w", err)
	}
	switch b := bound.(type) {
	case *unix.SockaddrInet4:
		s.addr = net.JoinHostPort(net.IP(b.Addr[:]).String(), strconv.Itoa(b.Port))
	case *unix.SockaddrInet6:
		s.addr = net.JoinHostPort(net.IP(b.Addr[:]).String(), strconv.Itoa(b.Port))
	}
	if s.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	if s.wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	for _, fd := range []int{s.lfd, s.wakefd} {
		if err := s.watch(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN); err != nil {
			return err
		}
	}
	return nil
}

// resolveTCP turns host:port into an address, so this server accepts the
// same -addr values as the ones built on the net package.
func resolveTCP(addr string) (*net.TCPAddr, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return nil, fmt.Errorf("bad port %q", port)
	}
	if ip := net.ParseIP(host); ip != nil {
		return &net.TCPAddr{IP: ip, Port: p}, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("cannot resolve %q", host)
	}
	return &net.TCPAddr{IP: ips[0], Port: p}, nil
}

func (s *epollServer) watch(op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(s.epfd, op, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl fd %d: %w", fd, err)
	}
	return nil
}

func (s *epollServer) Addr() string       { return s.addr }
func (s *epollServer) Done() <-chan error { return s.done }

// Close wakes the loop through the eventfd and waits until it has closed
// every descriptor.
func (s *epollServer) Close() error {
	// eventfd(2) takes an 8-byte counter increment; any non-zero value
	// makes it readable, so the byte order does not matter here.
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	if _, err := unix.Write(s.wakefd, one); err != nil {
		return fmt.Errorf("eventfd write: %w", err)
	}
	<-s.stopped
	return nil
}

func (s *epollServer) loop() {
	defer close(s.stopped)
	defer s.closeAll()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(s.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			s.done <- fmt.Errorf("epoll_wait: %w", err)
			return
		}
		for _, ev := range events[:n] {
			switch fd := int(ev.Fd); fd {
			case s.wakefd:
				return
			case s.lfd:
				s.acceptAll()
			default:
				s.serve(fd, ev.Events)
			}
		}
	}
}

// acceptAll takes every connection waiting in the backlog.
func (s *epollServer) acceptAll() {
	for {
		fd, _, err := unix.Accept4(s.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch {
		case err == nil:
		case errors.Is(err, unix.EAGAIN):
			return
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
			continue
		default:
			// EMFILE and friends: the connection stays in the backlog
			// and level-triggered epoll reports it again; the load
			// generator raises limits so this is not expected.
			fmt.Fprintf(os.Stderr, "accept4: %v\n", err)
			return
		}
		if err := s.watch(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN|unix.EPOLLRDHUP); err != nil {
			fmt.Fprintln(os.Stderr, err)
			unix.Close(fd)
			continue
		}
		s.pending[fd] = nil
	}
}

// serve handles one readiness report for a client. While bytes are owed to
// the client it watches only for writability, so a client that does not read
// its replies stops being read from instead of growing our memory.
func (s *epollServer) serve(fd int, events uint32) {
	if events&unix.EPOLLOUT != 0 {
		if !s.flush(fd) {
			return
		}
		if len(s.pending[fd]) > 0 {
			return
		}
		if err := s.watch(unix.EPOLL_CTL_MOD, fd, unix.EPOLLIN|unix.EPOLLRDHUP); err != nil {
			s.drop(fd)
			return
		}
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	n, err := unix.Read(fd, s.buf)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return
	}
	if n <= 0 || err != nil {
		// 0 is end of file: the client is gone (or half-closed; an
		// echo server has nothing more to say either way).
		s.drop(fd)
		return
	}
	s.pending[fd] = s.buf[:n]
	if !s.flush(fd) {
		return
	}
	if rest := s.pending[fd]; len(rest) > 0 {
		// Keep our own copy: s.buf is reused by the next client.
		s.pending[fd] = append([]byte(nil), rest...)
		if err := s.watch(unix.EPOLL_CTL_MOD, fd, unix.EPOLLOUT); err != nil {
			s.drop(fd)
		}
		return
	}
	s.pending[fd] = nil
}

// flush writes as much of the pending bytes as the socket takes; it reports
// false if the client was dropped.
func (s *epollServer) flush(fd int) bool {
	p := s.pending[fd]
	for len(p) > 0 {
		w, err := unix.Write(fd, p)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			s.drop(fd)
			return false
		}
		p = p[w:]
	}
	s.pending[fd] = p
	return true
}

func (s *epollServer) drop(fd int) {
	// Closing the descriptor also removes it from the epoll set (it has
	// no duplicates), so no EPOLL_CTL_DEL is needed.
	delete(s.pending, fd)
	unix.Close(fd)
}

func (s *epollServer) closeAll() {
	for fd := range s.pending {
		s.drop(fd)
	}
	for _, fd := range []int{s.lfd, s.wakefd, s.epfd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
