package main

// The plumbing: what the server needs but the lesson does not. Flag parsing,
// opening the listening socket, formatting addresses for the logs, the
// signal self-pipe and the spare descriptor are the same from one stage to
// the next; a stage changes this file only where its idea needs it.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// parseFlags parses the command line. A mistyped flag gets one line on
// stderr and exit status 2, not the usage text; -h still prints the usage.
func parseFlags() {
	flag.CommandLine.Init(os.Args[0], flag.ContinueOnError)
	flag.CommandLine.SetOutput(io.Discard)
	err := flag.CommandLine.Parse(os.Args[1:])
	if err == flag.ErrHelp {
		flag.CommandLine.SetOutput(os.Stderr)
		flag.PrintDefaults()
		os.Exit(0)
	}
	if err == nil && flag.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", flag.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v (try -h)\n", os.Args[0], err)
		os.Exit(2)
	}
}

// listenTCP opens one listening socket for every address the host in addr
// resolves to, all on the same port.
func listenTCP(addr string) ([]int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen tcp %q: %v", addr, err)
	}
	portNum, err := net.LookupPort("tcp", port)
	if err != nil {
		return nil, fmt.Errorf("listen tcp %q: %v", addr, err)
	}
	ips, err := resolve(host)
	if err != nil {
		return nil, fmt.Errorf("listen tcp %q: %v", addr, err)
	}
	// With port 0 the kernel picks the first listener's port from those free
	// in its family, and the others ask for the same number. In the other
	// family it can be taken (even by a connection lingering in TIME_WAIT);
	// then all are closed and opened again on a fresh pick.
	for try := 1; ; try++ {
		listeners, err := listenAll(ips, portNum)
		if portNum == 0 && errors.Is(err, unix.EADDRINUSE) && try < 10 {
			continue
		}
		return listeners, err
	}
}

// listenAll opens a listener on each address, all on port (with port 0, on
// the port the kernel picks for the first). An address this machine cannot
// bind (no IPv6, say) is skipped, with a line in the log if any other worked;
// any other failure, such as a port in use, stops the server, which should
// not quietly serve half of what it was asked to.
func listenAll(ips []net.IP, port int) ([]int, error) {
	var listeners []int
	var skipped []error
	for _, ip := range ips {
		fd, err := listenOn(&net.TCPAddr{IP: ip, Port: port})
		switch {
		case errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.EAFNOSUPPORT):
			skipped = append(skipped, err)
			continue
		case err != nil:
			for _, fd := range listeners {
				unix.Close(fd)
			}
			return nil, err
		}
		listeners = append(listeners, fd)
		if port == 0 {
			sa, _ := unix.Getsockname(fd)
			port = portOf(sa)
		}
	}
	if len(listeners) == 0 {
		return nil, skipped[0] // a failed start says one thing: the first
	}
	for _, err := range skipped {
		log.Printf("skipping %v", err)
	}
	return listeners, nil
}

// resolve returns the addresses to listen on for host, without duplicates
// (a hosts file can list one twice, and a second bind would fail). An empty
// host means the wildcard address of each family.
func resolve(host string) ([]net.IP, error) {
	if host == "" {
		return []net.IP{net.IPv4zero, net.IPv6unspecified}, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return nil, err
	}
	var unique []net.IP
	for _, ip := range ips {
		if !slices.ContainsFunc(unique, ip.Equal) {
			unique = append(unique, ip)
		}
	}
	return unique, nil
}

// listenOn opens a listening TCP socket on one address the way the articles
// do, one system call at a time: socket, setsockopt, bind, listen.
func listenOn(tcpAddr *net.TCPAddr) (int, error) {
	family, sa := sockaddr(tcpAddr)
	fd, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, fmt.Errorf("listen tcp %s: socket: %w", tcpAddr, err)
	}
	// Without SO_REUSEADDR a restarted server cannot bind its port while
	// connections from its previous run linger in TIME_WAIT.
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	// An IPv6 socket on Linux and macOS also accepts IPv4 connections by
	// default (as ::ffff:127.0.0.1), so a wildcard one would claim the IPv4
	// port too and the IPv4 listener's bind would fail; FreeBSD, NetBSD and
	// OpenBSD default to IPv6 only (ip6(4)). Saying IPV6_V6ONLY makes every
	// system behave the same: one socket per family.
	if err == nil && family == unix.AF_INET6 {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	if err == nil {
		err = unix.Bind(fd, sa)
	}
	if err == nil {
		err = unix.Listen(fd, unix.SOMAXCONN)
	}
	// Non-blocking, because a client can give up between the moment the
	// listener is reported readable and our accept(2): a blocking accept
	// would then stall the whole server until somebody else connects.
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen tcp %s: %w", tcpAddr, err)
	}
	return fd, nil
}

// sockaddr converts a resolved address to the form bind(2) takes.
func sockaddr(a *net.TCPAddr) (family int, sa unix.Sockaddr) {
	if ip4 := a.IP.To4(); ip4 != nil || a.IP == nil {
		sa4 := &unix.SockaddrInet4{Port: a.Port}
		copy(sa4.Addr[:], ip4)
		return unix.AF_INET, sa4
	}
	sa6 := &unix.SockaddrInet6{Port: a.Port}
	copy(sa6.Addr[:], a.IP)
	return unix.AF_INET6, sa6
}

// socketFile is the UNIX socket file this server created: its path, and the
// device and inode it was created with, so that shutdown can tell whether
// the file at that path is still this server's own before removing it; and
// the lock that makes the path this server's while it runs.
type socketFile struct {
	path     string
	dev, ino uint64
	lock     *pathLock
}

// listenUnix opens a listening UNIX-domain socket at path.
func listenUnix(path string) (int, *socketFile, error) {
	// sun_path holds 104 bytes on macOS and the BSDs, 108 on Linux, and the
	// name needs a terminating NUL. The usual C recipe copies the path in
	// with strncpy or strlcpy, which cut a longer one short without a word,
	// so the server listens somewhere else than asked; here it is an error.
	if limit := len(unix.RawSockaddrUnix{}.Path) - 1; len(path) > limit {
		return -1, nil, fmt.Errorf("listen unix %s: path is %d bytes; this system allows at most %d", path, len(path), limit)
	}
	lock, err := lockPath(path)
	if err != nil {
		return -1, nil, fmt.Errorf("listen unix %s: %v", path, err)
	}
	started := false
	defer func() {
		if !started {
			lock.release()
		}
	}()
	if err := clearStaleSocket(path); err != nil {
		return -1, nil, fmt.Errorf("listen unix %s: %v", path, err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("listen unix %s: socket: %v", path, err)
	}
	// bind(2) creates the socket file, and connecting to it needs write
	// permission on it. A umask of 0177 makes it 0600 from the first
	// instant, so no other user can connect, not even during a chmod's delay.
	old := unix.Umask(0o177)
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: path})
	unix.Umask(old)
	if err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("listen unix %s: %v", path, err)
	}
	var st unix.Stat_t
	err = unix.Lstat(path, &st)
	if err == nil {
		err = unix.Listen(fd, unix.SOMAXCONN)
	}
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		unix.Close(fd)
		unix.Unlink(path) // bind made the file: do not leave it behind
		return -1, nil, fmt.Errorf("listen unix %s: %v", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	started = true
	return fd, &socketFile{path: abs, dev: uint64(st.Dev), ino: uint64(st.Ino), lock: lock}, nil
}

// A pathLock is the lock file beside a socket file (PATH.lock), held with
// flock(2) for as long as the server runs: the server that holds it owns the
// socket path. Asking the socket itself cannot tell a dead server from a
// busy one everywhere: on macOS and the BSDs a live server whose accept
// queue is full refuses connections (ECONNREFUSED) exactly as a socket file
// with nobody behind it does. A lock cannot be mistaken that way, and the
// kernel lets go of it when its holder dies, however it dies.
type pathLock struct {
	path     string
	fd       int
	dev, ino uint64
}

// lockMark is the whole content of a lock file, so that a file at PATH.lock
// that somebody else put there is recognised, and neither used nor removed.
const lockMark = "lock file of a kqueue workbook server: it owns the socket beside it\n"

// lockPath takes the lock of the socket path sock, or says who has it.
func lockPath(sock string) (*pathLock, error) {
	path := sock + ".lock"
	for range 3 {
		// O_NOFOLLOW: a link at the lock's path is not a lock file.
		// O_NONBLOCK: nor is a FIFO, and opening one must not wait.
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
		if err == unix.ELOOP || err == unix.EISDIR {
			return nil, fmt.Errorf("%s exists and is not a lock file; not touching it", path)
		} else if err != nil {
			return nil, err
		}
		l := &pathLock{path: path, fd: fd}
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err == unix.EWOULDBLOCK {
			unix.Close(fd)
			return nil, fmt.Errorf("another server is listening on %s", sock)
		} else if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("lock %s: %v", path, err)
		}
		// The previous holder removes its lock file on the way out. If it
		// did so between our open and our flock, we hold a lock on a file
		// nobody else can find, which protects nothing: start again.
		var byName, byFd unix.Stat_t
		if unix.Lstat(path, &byName) != nil || unix.Fstat(fd, &byFd) != nil ||
			byName.Dev != byFd.Dev || byName.Ino != byFd.Ino {
			unix.Close(fd)
			continue
		}
		l.dev, l.ino = uint64(byFd.Dev), uint64(byFd.Ino)
		mark := make([]byte, len(lockMark)+1)
		n, _ := unix.Pread(fd, mark, 0)
		if byFd.Mode&unix.S_IFMT != unix.S_IFREG || n > 0 && string(mark[:n]) != lockMark {
			unix.Close(fd)
			return nil, fmt.Errorf("%s exists and is not a lock file; not touching it", path)
		}
		if n == 0 {
			if _, err := unix.Pwrite(fd, []byte(lockMark), 0); err != nil {
				l.release()
				return nil, fmt.Errorf("lock %s: %v", path, err)
			}
		}
		return l, nil
	}
	return nil, fmt.Errorf("lock %s: it keeps being replaced; try again", path)
}

// release removes the lock file, if the file at its path is still the one
// this server locked, and then lets go of the lock. In that order: a server
// that opens the old file meanwhile finds it gone once it holds the lock.
func (l *pathLock) release() {
	var st unix.Stat_t
	if unix.Lstat(l.path, &st) == nil && uint64(st.Dev) == l.dev && uint64(st.Ino) == l.ino {
		unix.Unlink(l.path)
	}
	unix.Close(l.fd)
}

// clearStaleSocket makes room at path for a new socket. A server that died
// without cleaning up leaves its socket file behind, and bind(2) fails while
// it exists. The caller holds the path's lock, so no server of this kind is
// behind the file; it is removed if it is a socket and nobody answers on it
// either (a program that takes no lock may be listening there). A live
// server's socket and anything that is not a socket (a file, a directory, a
// link) are left exactly as they are.
func clearStaleSocket(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err == unix.ENOENT {
		return nil
	} else if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%s exists and is not a socket; not touching it", path)
	}
	probe, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	// Non-blocking, so that a live server too busy to accept cannot hold
	// the probe: Linux answers EAGAIN when its queue is full.
	unix.SetNonblock(probe, true)
	err = unix.Connect(probe, &unix.SockaddrUnix{Name: path})
	unix.Close(probe)
	switch err {
	case nil, unix.EAGAIN:
		return fmt.Errorf("another server is listening on %s", path)
	case unix.ECONNREFUSED:
		log.Printf("removing stale socket file %s", path)
		return unix.Unlink(path)
	default:
		return fmt.Errorf("cannot tell whether %s is in use: %v", path, err)
	}
}

// remove removes the socket file if the file at its path is still the one
// this server created; if somebody replaced it meanwhile, it is theirs.
// Then it gives up the path's lock.
func (s *socketFile) remove() {
	defer s.lock.release()
	var st unix.Stat_t
	switch err := unix.Lstat(s.path, &st); {
	case err == unix.ENOENT:
		log.Printf("socket file %s is gone already (moved or removed by someone else)", s.path)
		return
	case err != nil || uint64(st.Dev) != s.dev || uint64(st.Ino) != s.ino:
		log.Printf("leaving %s alone: it is no longer this server's socket", s.path)
		return
	}
	if err := unix.Unlink(s.path); err != nil {
		log.Printf("removing socket file: %v", err)
	}
}

// localAddr is the address a socket is bound to; with port 0 in -addr it is
// the only way to learn which port the kernel picked.
func localAddr(fd int) string {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "?"
	}
	return addrString(sa)
}

// portOf is the port of a TCP socket address.
func portOf(sa unix.Sockaddr) int {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return sa.Port
	case *unix.SockaddrInet6:
		return sa.Port
	}
	return 0
}

// addrString formats a socket address for the logs and the "listening on"
// line.
func addrString(sa unix.Sockaddr) string {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrUnix:
		return "unix socket" // a connecting client's end has no name
	}
	return fmt.Sprint(sa)
}

// notifyOnSignal returns the read end of a pipe that becomes readable when
// SIGINT or SIGTERM first arrives. The loop spends its time parked in the
// kernel, not in Go code, so the news has to reach it as a descriptor it
// already watches: the self-pipe trick. The byte written is the signal's
// number.
func notifyOnSignal() int {
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		log.Fatalf("pipe: %v", err)
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := (<-signals).(syscall.Signal)
		// A pipe with room takes the byte; a write interrupted before it
		// began (EINTR) took nothing, and must be made again, or the loop
		// never hears of the signal.
		for {
			if _, err := unix.Write(p[1], []byte{byte(sig)}); err != unix.EINTR {
				break
			}
		}
		// A second signal while the first is being handled ends the process
		// at once: whoever presses Ctrl-C again will not wait for a shutdown
		// that is taking too long, or is stuck (say, writing its log to a
		// terminal whose output is paused). With the handler gone the
		// signal kills the process, so a shell shows 130 for SIGINT and 143
		// for SIGTERM, as for any program that does not catch them. One that
		// comes within doubleSignal of the first is that one again: a signal
		// sent to a process group reaches the server from the sender, and
		// once more from a parent that forwards it (make forwards SIGTERM).
		first := time.Now()
		for sig = (<-signals).(syscall.Signal); time.Since(first) < doubleSignal; {
			sig = (<-signals).(syscall.Signal)
		}
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		unix.Kill(os.Getpid(), sig)
	}()
	return p[0]
}

// doubleSignal is how far apart two signals must be to count as two: a
// person pressing Ctrl-C twice takes longer.
const doubleSignal = 200 * time.Millisecond

// openSpare holds one descriptor in reserve, for refuseOutOfFiles.
func openSpare() int {
	spare := -1
	if !takeSpare(&spare) {
		log.Fatalf("open /dev/null: %v", spareErr)
	}
	return spare
}

// refuseOutOfFiles is acceptClient's answer to EMFILE or ENFILE: the process
// is out of descriptors. The connection stays queued, so the listener stays
// readable and a naive loop would spin on it for ever. Free the spare
// descriptor, accept the client with it, close it at once, and take the
// spare back: the client is told no, and the loop moves on.
//
// The spare may not come back: the number freed can be taken by another
// thread meanwhile, or the whole system be out of files. Then *spare is -1,
// the next client could not be refused and would keep the listener
// readable; so the caller stops watching the listener until takeSpare,
// tried after every batch of events and at least every spareRetry, has the
// spare again.
func refuseOutOfFiles(listener int, spare *int) {
	if *spare < 0 {
		return
	}
	unix.Close(*spare)
	*spare = -1
	if fd, _, err := unix.Accept(listener); err == nil {
		unix.Close(fd)
	}
	log.Printf("refused a client: out of file descriptors")
	if !takeSpare(spare) {
		log.Printf("no spare descriptor (open /dev/null: %v): not accepting until there is one", spareErr)
	}
}

// takeSpare opens the spare descriptor unless it is held already, and
// reports whether it is held. Once it is back after a failure, it says so in
// the log.
func takeSpare(spare *int) bool {
	if *spare >= 0 {
		return true
	}
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		spareErr = err
		return false
	}
	if spareErr != nil {
		log.Printf("spare descriptor back: accepting again")
	}
	*spare, spareErr = fd, nil
	return true
}

// spareErr is why the spare descriptor could not be opened, while it cannot.
var spareErr error

// spareRetry is how long a loop without its spare waits at most before it
// tries to take it again.
const spareRetry = 100 * time.Millisecond

// listenTimeout is how long the loop may wait for events as far as the
// spare is concerned: for ever (nil) while it is listening, but spareRetry
// while it is not, so that it tries again to take the spare even if nothing
// else happens.
func listenTimeout(listening bool) *unix.Timespec {
	if listening {
		return nil
	}
	ts := unix.NsecToTimespec(spareRetry.Nanoseconds())
	return &ts
}
