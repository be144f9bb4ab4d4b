//go:build linux

package hosts_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meshgate/meshgate/internal/testenv"
)

// lab is a set of hosts made of Linux network namespaces: one namespace
// per host, each with an eth0 whose veth peer is a port of a bridge in a
// namespace of its own (the switch), and the processes started in them.
// Everything it creates is named PREFIX-…, PREFIX unique per lab; nothing is
// created in, or changed about, the namespace the test runs in. Cleanup
// stops the processes and deletes the namespaces, which takes the veths and
// the bridge with them.
type lab struct {
	t      *testing.T
	prefix string
	logDir string

	mu    sync.Mutex
	nss   []string // created namespaces, in order
	procs []*proc
}

// switchNS is the namespace (suffix) holding the bridge.
const switchNS = "sw"

// newLab creates the namespaces and the network: addrs maps each host to its
// address with prefix length ("10.77.0.10/24"). It skips the test where
// network namespaces cannot be made.
func newLab(t *testing.T, addrs map[string]string) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "needs root to create network namespaces (ip netns); CI runs as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		testenv.Unavailable(t, "needs ip (iproute2) to create network namespaces: apt-get install iproute2")
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	l := &lab{t: t, prefix: "mgh" + hex.EncodeToString(b[:]), logDir: t.TempDir()}
	if dir := os.Getenv("MESHGATE_LAB_LOGS"); dir != "" {
		// Keep the processes' logs: MESHGATE_LAB_LOGS/PREFIX/NAME.log.
		l.logDir = filepath.Join(dir, l.prefix)
		if err := os.MkdirAll(l.logDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(l.close)
	if err := l.ip("netns", "add", l.ns(switchNS)); err != nil {
		testenv.Unavailable(t, "network namespaces are not permitted here: %v", err)
	}
	l.nss = append(l.nss, l.ns(switchNS))
	l.must("-n", l.ns(switchNS), "link", "add", "br0", "type", "bridge")
	l.must("-n", l.ns(switchNS), "link", "set", "br0", "up")
	hosts := make([]string, 0, len(addrs))
	for h := range addrs {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	for _, h := range hosts {
		ns := l.ns(h)
		l.must("netns", "add", ns)
		l.nss = append(l.nss, ns)
		// Both ends are created in their namespaces: "eth0" in the host,
		// the bridge port (named after the host) in the switch.
		l.must("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", h, "netns", l.ns(switchNS))
		l.must("-n", l.ns(switchNS), "link", "set", h, "master", "br0", "up")
		l.must("-n", ns, "addr", "add", addrs[h], "dev", "eth0")
		l.must("-n", ns, "link", "set", "eth0", "up")
		l.must("-n", ns, "link", "set", "lo", "up")
	}
	return l
}

// ns is the namespace name of host.
func (l *lab) ns(host string) string { return l.prefix + "-" + host }

// ip runs ip(8) with args.
func (l *lab) ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (l *lab) must(args ...string) {
	l.t.Helper()
	if err := l.ip(args...); err != nil {
		l.t.Fatal(err)
	}
}

// unplug takes host off the network: its port on the bridge goes down, so
// its eth0 loses carrier and nothing reaches it or leaves it. plug undoes it.
func (l *lab) unplug(host string) { l.must("-n", l.ns(switchNS), "link", "set", host, "down") }
func (l *lab) plug(host string)   { l.must("-n", l.ns(switchNS), "link", "set", host, "up") }

// proc is a process started in a host's namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when it has exited
}

// start runs argv in host's namespace (ip netns exec), its output in
// logDir/name.log. The process is stopped at cleanup, and killed if the
// test process dies first.
func (l *lab) start(host, name string, argv ...string) *proc {
	l.t.Helper()
	logPath := filepath.Join(l.logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		l.t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.ns(host)}, argv...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p
}

// exited reports whether p is no longer running.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to p's process group, and SIGKILL after timeout.
func (p *proc) stop(timeout time.Duration) {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// logTail is the end of p's log.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// close stops every process (all at once: each drains for a moment), shows
// their logs if the test failed, and deletes the namespaces.
func (l *lab) close() {
	l.mu.Lock()
	procs := l.procs
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(5 * time.Second) }()
	}
	wg.Wait()
	if l.t.Failed() {
		for _, p := range procs {
			l.t.Logf("--- %s (%s), last lines:\n%s", p.name, p.cmd.ProcessState, p.logTail(30))
		}
	}
	for i := len(l.nss) - 1; i >= 0; i-- {
		if err := l.ip("netns", "del", l.nss[i]); err != nil {
			l.t.Errorf("cleanup: %v", err)
		}
	}
}

// dial connects to addr from inside host's namespace: on a thread locked
// for the purpose, it enters the namespace (setns), makes the socket, which
// stays in that namespace, and goes back. A thread that cannot go back is
// never unlocked, so the runtime ends it with the goroutine; threads must not
// end otherwise, since the lab's processes die with the thread that started
// them (Pdeathsig).
func (l *lab) dial(ctx context.Context, host, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	nsPath := filepath.Join("/run/netns", l.ns(host))
	go func() {
		runtime.LockOSThread()
		c, back, err := dialFrom(ctx, nsPath, network, addr)
		if back {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// dialFrom dials from the namespace at nsPath on the calling (locked)
// thread; back reports whether the thread is in its own namespace again.
func dialFrom(ctx context.Context, nsPath, network, addr string) (c net.Conn, back bool, err error) {
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, true, err
	}
	defer home.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		return nil, true, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("setns %s: %w", nsPath, err)
	}
	var d net.Dialer
	c, err = d.DialContext(ctx, network, addr)
	back = unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil
	return c, back, err
}

// client is an HTTP client whose connections start in host's namespace;
// with tlsConfig, they are TLS (the mesh's mTLS, for a test's own SVID).
func (l *lab) client(host string, tlsConfig *tls.Config) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return l.dial(ctx, host, network, addr)
		},
		MaxIdleConnsPerHost: 4,
	}
	if tlsConfig != nil {
		// HTTP/1.1 only: a custom TLS dial leaves net/http without HTTP/2.
		tlsConfig = tlsConfig.Clone()
		tlsConfig.NextProtos = []string{"http/1.1"}
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := l.dial(ctx, host, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(c, tlsConfig)
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, err
			}
			return tc, nil
		}
	}
	l.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}
