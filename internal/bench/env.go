package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Env is what the suites share: the repository, a scratch directory, the
// tools, and the CPU layout (servers on core 0, load generators on core 1).
type Env struct {
	Opts   Options
	Root   string // module root (holds go.mod and bin/)
	Bin    string // Root/bin
	Tmp    string // scratch dir, removed by Close
	Pinned bool   // taskset pinning in effect
	ClkTck int    // clock ticks per second of /proc/PID/stat

	procs []*Proc
}

func newEnv(opts Options) (*Env, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "meshgate-bench-")
	if err != nil {
		return nil, err
	}
	e := &Env{Opts: opts, Root: root, Bin: filepath.Join(root, "bin"), Tmp: tmp, ClkTck: clkTck()}
	if _, err := exec.LookPath("taskset"); err != nil {
		fmt.Fprintln(os.Stderr, "bench: WARNING: taskset not found (util-linux); processes are not pinned")
	} else if runtime.NumCPU() < 2 {
		fmt.Fprintf(os.Stderr, "bench: WARNING: only %d CPU available; processes are not pinned\n", runtime.NumCPU())
	} else {
		e.Pinned = true
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(data)); len(f) > 0 {
			if l, err := strconv.ParseFloat(f[0], 64); err == nil && l > 0.5 {
				fmt.Fprintf(os.Stderr, "bench: note: load average %.2f before the run; other work on the machine skews the numbers\n", l)
			}
		}
	}
	return e, nil
}

// Close stops every process still running and removes the scratch dir.
func (e *Env) Close() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].Stop()
	}
	os.RemoveAll(e.Tmp)
}

// moduleRoot walks up from the working directory to the main module's go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/meshgate/meshgate\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the meshgate module (no go.mod of github.com/meshgate/meshgate above the working directory)")
		}
		dir = parent
	}
}

func clkTck() int {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

// pinned prefixes argv with taskset -c core when pinning is in effect.
func (e *Env) pinned(core int, argv ...string) []string {
	if !e.Pinned {
		return argv
	}
	return append([]string{"taskset", "-c", strconv.Itoa(core)}, argv...)
}

// ensureApt makes sure each command exists, installing its Debian package
// with apt-get when missing.
func ensureApt(ctx context.Context, cmdToPkg map[string]string) error {
	var missing []string
	for cmd, pkg := range cmdToPkg {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	fmt.Printf("bench: %s not installed; installing with apt-get (needs root and network)\n", strings.Join(missing, ", "))
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("%s missing and apt-get not available: install them by hand", strings.Join(missing, ", "))
	}
	update := exec.CommandContext(ctx, "apt-get", "update", "-qq")
	update.Stdout, update.Stderr = os.Stdout, os.Stderr
	if err := update.Run(); err != nil {
		return fmt.Errorf("apt-get update: %v", err)
	}
	install := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)...)
	install.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	install.Stdout, install.Stderr = os.Stdout, os.Stderr
	if err := install.Run(); err != nil {
		return fmt.Errorf("apt-get install %s: %v", strings.Join(missing, " "), err)
	}
	for cmd := range cmdToPkg {
		if _, err := exec.LookPath(cmd); err != nil {
			return fmt.Errorf("%s still not found after apt-get install", cmd)
		}
	}
	return nil
}

// vegeta returns the path of bin/vegeta, building it from the tools module
// when missing.
func (e *Env) vegeta(ctx context.Context) (string, error) {
	path := filepath.Join(e.Bin, "vegeta")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	fmt.Println("bench: building bin/vegeta from internal/tools")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", path, "github.com/tsenart/vegeta/v12")
	cmd.Dir = filepath.Join(e.Root, "internal", "tools")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building vegeta: %v", err)
	}
	return path, nil
}

// goBuild builds a package of the main module into the scratch dir.
func (e *Env) goBuild(ctx context.Context, pkg, name string) (string, error) {
	out := filepath.Join(e.Tmp, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = e.Root
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %v", pkg, err)
	}
	return out, nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Proc is a long-running server started by the harness.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// start runs argv with extra environment, its output to a log file in the
// scratch dir. The process is stopped by Env.Close at the latest.
func (e *Env) start(name string, env []string, argv ...string) (*Proc, error) {
	logf, err := os.Create(filepath.Join(e.Tmp, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	e.procs = append(e.procs, p)
	return p, nil
}

// Pid is the process id (taskset execs, so it is the server itself).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		if p.err == nil {
			return true, errors.New("exited with status 0")
		}
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after 5 s.
func (p *Proc) Stop() {
	if done, _ := p.Exited(); !done {
		_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
			<-p.done
		}
	}
	p.log.Close()
}

// LogTail returns the last lines of the process's output.
func (p *Proc) LogTail(n int) string {
	data, err := os.ReadFile(p.log.Name())
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitHTTP polls url until it answers 200, the process exits, or the
// deadline passes.
func waitHTTP(ctx context.Context, p *Proc, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if done, err := p.Exited(); done {
			return fmt.Errorf("process exited: %v", err)
		}
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// cpuTicks is utime+stime of one process (all its threads), in clock ticks.
func cpuTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(data))
}

// parseStatCPU extracts utime+stime (fields 14 and 15) from /proc/PID/stat.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted after its last ')'.
func parseStatCPU(stat string) (int64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad utime/stime in /proc stat")
	}
	return ut + st, nil
}

// statPPid is field 4 of /proc/PID/stat.
func statPPid(stat string) int {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// children lists the pids whose parent is pid.
func children(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, ent := range ents {
		n, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if err == nil && statPPid(string(data)) == pid {
			out = append(out, n)
		}
	}
	return out
}

// peakRSS is VmHWM of a process, in bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseVmHWM(f)
}

func parseVmHWM(r io.Reader) (int64, error) { return parseStatusKB(r, "VmHWM") }

// startEdge writes yaml to NAME.yaml and runs the edge binary bin on it
// (GOMAXPROCS=1, pinned to the servers' core), and waits until ready
// answers (an admin /readyz, or a URL of the edge). The caller stops the
// process; one that never got ready is stopped here.
func (e *Env) startEdge(ctx context.Context, name, bin, yaml, ready string) (*Proc, error) {
	cfg := filepath.Join(e.Tmp, name+".yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	p, err := e.start(name, []string{"GOMAXPROCS=1"}, e.pinned(serverCore, bin, "--config", cfg)...)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, p, ready, readyWait); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%s failed to start: %v\n%s", name, err, indent(p.LogTail(15)))
	}
	return p, nil
}

// startBackend runs the suites' 1 KiB keep-alive backend (GOMAXPROCS=1,
// pinned to the servers' core) on addr, with extra flags if any (-json,
// -delay), and waits until it answers. The binary is built by the first
// suite that needs it; later ones reuse it rather than overwrite a binary
// that may still be running. The caller stops the process (Env.Close does
// at the latest).
func (e *Env) startBackend(ctx context.Context, name, addr string, flags ...string) (*Proc, error) {
	bin := filepath.Join(e.Tmp, "backend")
	if _, err := os.Stat(bin); err != nil {
		if bin, err = e.goBuild(ctx, "./internal/bench/backend", "backend"); err != nil {
			return nil, err
		}
	}
	p, err := e.start(name, []string{"GOMAXPROCS=1"}, e.pinned(serverCore, append([]string{bin, "-addr", addr, "-size", "1024"}, flags...)...)...)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, p, "http://"+addr+"/", readyWait); err != nil {
		p.Stop()
		return nil, fmt.Errorf("backend failed to start: %v\n%s", err, indent(p.LogTail(10)))
	}
	return p, nil
}
