package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshgate/meshgate/pki"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"github.com/urfave/cli/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// shortTempDir returns a new 0700 directory with a short path, so that
// socket paths stay under the unix limit.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func initTestCA(t *testing.T) string {
	t.Helper()
	caDir := filepath.Join(t.TempDir(), "ca")
	mustRun(t, "pki", "init", "--trust-domain", "example.org", "--dir", caDir, "--intermediate")
	return caDir
}

// running is a pki serve started in the background: its output lines and,
// once it returned, its error.
type running struct {
	lines chan string
	done  chan error
}

// startServe runs run (pkiServe or the CLI) in a goroutine, writing to a
// pipe whose lines arrive on the returned running's lines channel.
func startServe(run func(w io.Writer) error) *running {
	pr, pw := io.Pipe()
	r := &running{lines: make(chan string, 64), done: make(chan error, 1)}
	go func() {
		err := run(pw)
		pw.CloseWithError(err) // nil: readers get io.EOF
		r.done <- err
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
	}()
	return r
}

// readLines waits for n output lines.
func (r *running) readLines(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		select {
		case l, ok := <-r.lines:
			if !ok {
				t.Fatalf("pki serve ended after %d lines %q: %v", len(got), got, <-r.done)
			}
			got = append(got, l)
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %d lines, got %q", n, got)
		}
	}
	return got
}

// wait waits for pki serve to return and checks it printed nothing more.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		for l := range r.lines {
			t.Errorf("unexpected extra output line %q", l)
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("pki serve did not return")
		return nil
	}
}

// parseServeLine splits "NAME SPIFFE-ID unix:///path" and returns the parts
// with the socket path.
func parseServeLine(t *testing.T, line string) (name, id, path string) {
	t.Helper()
	f := strings.Fields(line)
	if len(f) != 3 || !strings.HasPrefix(f[2], "unix:///") {
		t.Fatalf("output line %q: want NAME SPIFFE-ID unix:///path", line)
	}
	return f[0], f[1], strings.TrimPrefix(f[2], "unix://")
}

func fetchSVID(addr string) (*x509svid.SVID, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return workloadapi.FetchX509SVID(ctx, workloadapi.WithAddr(addr))
}

func TestPKIServe(t *testing.T) {
	caDir := initTestCA(t)
	ca, err := pki.LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	socketDir := filepath.Join(shortTempDir(t), "s") // missing: pki serve creates it
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	want := []struct{ name, id string }{
		{"edge", "spiffe://example.org/edge"},
		{"orders", "spiffe://example.org/ns/prod/sa/orders"},
		{"intruder-only", "spiffe://example.org/ns/prod/sa/pay"},
	}
	opts := serveOptions{
		CADir:     caDir,
		SocketDir: socketDir,
		TTL:       30 * time.Minute,
		UIDs: []string{
			fmt.Sprintf("orders=%d", os.Getuid()),          // served: we are that uid
			fmt.Sprintf("intruder-only=%d", os.Getuid()+1), // never served to us
		},
	}
	for _, w := range want {
		opts.Workloads = append(opts.Workloads, w.name+"="+w.id)
	}
	srv := startServe(func(w io.Writer) error { return pkiServe(ctx, w, opts) })
	lines := srv.readLines(t, len(want))

	if fi, err := os.Stat(socketDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket dir: %v %v, want mode 0700", fi, err)
	}
	var paths []string
	for i, line := range lines {
		name, id, path := parseServeLine(t, line)
		if name != want[i].name || id != want[i].id {
			t.Errorf("line %d = %q, want name %s, ID %s", i, line, want[i].name, want[i].id)
		}
		if wantPath := filepath.Join(socketDir, want[i].name+".sock"); path != wantPath {
			t.Errorf("line %d: socket %s, want %s", i, path, wantPath)
		}
		paths = append(paths, path)
		if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want a socket with mode 0600", path, fi, err)
		}

		svid, err := fetchSVID("unix://" + path)
		if name == "intruder-only" {
			if status.Code(err) != codes.PermissionDenied {
				t.Errorf("%s (--uid of another user): %v, want PermissionDenied", name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("FetchX509SVID(%s): %v", path, err)
		}
		if svid.ID.String() != want[i].id {
			t.Errorf("%s served %s, want %s", path, svid.ID, want[i].id)
		}
		if got, _, err := x509svid.Verify(svid.Certificates, ca.Bundle()); err != nil || got != svid.ID {
			t.Errorf("%s: SVID does not verify against the CA: %v %v", path, got, err)
		}
		if d := time.Until(svid.Certificates[0].NotAfter); d < 29*time.Minute || d > 31*time.Minute {
			t.Errorf("%s: SVID lives %v, want --ttl 30m", path, d)
		}
	}

	select {
	case err := <-srv.done:
		t.Fatalf("pki serve returned before cancel: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := srv.wait(t); err != nil {
		t.Fatalf("pki serve after cancel: %v", err)
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after shutdown (%v)", p, err)
		}
	}
	if _, err := os.Stat(socketDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket dir pki serve created is still there (%v)", err)
	}
}

// TestPKIServeCLI runs the command through urfave/cli and stops it with
// SIGTERM, as a process manager would.
func TestPKIServeCLI(t *testing.T) {
	caDir := initTestCA(t)
	socketDir := shortTempDir(t) // exists, mode 0700: kept
	app := func(w io.Writer) *cli.App {
		return &cli.App{
			Name:           "meshctl",
			Commands:       []*cli.Command{pkiCommand()},
			Writer:         w,
			ErrWriter:      io.Discard,
			ExitErrHandler: func(*cli.Context, error) {},
		}
	}
	srv := startServe(func(w io.Writer) error {
		return app(w).Run([]string{"meshctl", "pki", "serve", "--ca-dir", caDir, "--socket-dir", socketDir,
			"--workload", "a=spiffe://example.org/a", "--workload", "b=spiffe://example.org/b/c", "--ttl", "10m"})
	})
	lines := srv.readLines(t, 2)
	for i, want := range []string{"spiffe://example.org/a", "spiffe://example.org/b/c"} {
		_, id, path := parseServeLine(t, lines[i])
		svid, err := fetchSVID("unix://" + path)
		if err != nil {
			t.Fatalf("FetchX509SVID(%s): %v", path, err)
		}
		if id != want || svid.ID.String() != want {
			t.Errorf("line %q served %s, want %s", lines[i], svid.ID, want)
		}
		if d := time.Until(svid.Certificates[0].NotAfter); d > 11*time.Minute {
			t.Errorf("SVID lives %v, want --ttl 10m", d)
		}
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.wait(t); err != nil {
		t.Fatalf("pki serve after SIGTERM: %v", err)
	}
	left, err := os.ReadDir(socketDir)
	if err != nil || len(left) != 0 {
		t.Errorf("socket dir after SIGTERM: %v %v, want it kept and empty", left, err)
	}
}

func TestPKIServeErrors(t *testing.T) {
	caDir := initTestCA(t)
	tmp := shortTempDir(t)
	fresh := filepath.Join(tmp, "fresh") // must not be created by a failed serve
	openDir := filepath.Join(tmp, "open")
	if err := os.Mkdir(openDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openDir, 0o770); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(tmp, strings.Repeat("d", 100))

	serve := func(extra ...string) []string {
		return append([]string{"pki", "serve", "--ca-dir", caDir, "--socket-dir", fresh}, extra...)
	}
	wl := func(s string) []string { return []string{"--workload", s} }
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	edge := wl("edge=spiffe://example.org/edge")

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"missing CA", []string{"pki", "serve", "--ca-dir", filepath.Join(tmp, "noca"), "--socket-dir", fresh, "--workload", "edge=spiffe://example.org/edge"},
			[]string{"no CA in", "meshctl pki init --trust-domain example.org --dir " + filepath.Join(tmp, "noca")}},
		{"no workload", []string{"pki", "serve", "--ca-dir", caDir, "--socket-dir", fresh}, []string{"workload"}},
		{"no =", serve(wl("spiffe://example.org/edge")...), []string{"want NAME=SPIFFE-ID"}},
		{"empty name", serve(wl("=spiffe://example.org/edge")...), []string{`invalid name ""`}},
		{"slash in name", serve(wl("a/b=spiffe://example.org/edge")...), []string{`invalid name "a/b"`}},
		{"dot name", serve(wl("..=spiffe://example.org/edge")...), []string{`invalid name ".."`}},
		{"bad ID", serve(wl("edge=example.org/edge")...), []string{`invalid SPIFFE ID "example.org/edge"`}},
		{"ID without path", serve(wl("edge=spiffe://example.org")...), []string{"has no path"}},
		{"other trust domain", serve(cat(edge, wl("pay=spiffe://other.org/pay"))...),
			[]string{"--workload pay", "is in trust domain other.org, but the CA in " + caDir + " is for example.org"}},
		{"duplicate name", serve(cat(edge, wl("edge=spiffe://example.org/other"))...), []string{"name edge is already used for spiffe://example.org/edge"}},
		{"socket path too long", []string{"pki", "serve", "--ca-dir", caDir, "--socket-dir", long, "--workload", "edge=spiffe://example.org/edge"},
			[]string{"unix socket paths are limited to 103", "shorter --socket-dir"}},
		{"uid without =", serve(cat(edge, []string{"--uid", "1000"})...), []string{"want NAME=UID"}},
		{"uid unknown workload", serve(cat(edge, []string{"--uid", "nope=1000"})...), []string{`no --workload named "nope"`}},
		{"uid not a number", serve(cat(edge, []string{"--uid", "edge=root"})...), []string{`UID "root" is not a non-negative number`}},
		{"uid negative", serve(cat(edge, []string{"--uid", "edge=-1"})...), []string{"not a non-negative number"}},
		{"uid twice", serve(cat(edge, []string{"--uid", "edge=1", "--uid", "edge=2"})...), []string{"already has --uid 1"}},
		{"bad ttl", serve(cat(edge, []string{"--ttl", "0s"})...), []string{"--ttl must be positive"}},
		{"socket dir writable by group", []string{"pki", "serve", "--ca-dir", caDir, "--socket-dir", openDir, "--workload", "edge=spiffe://example.org/edge"},
			[]string{"writable by group or others (mode -rwxrwx---)", "chmod go-w"}},
		{"socket dir is a file", []string{"pki", "serve", "--ca-dir", caDir, "--socket-dir", file, "--workload", "edge=spiffe://example.org/edge"},
			[]string{"is not a directory"}},
		{"socket dir with space", []string{"pki", "serve", "--ca-dir", caDir, "--socket-dir", filepath.Join(tmp, "a b"), "--workload", "edge=spiffe://example.org/edge"},
			[]string{"contains white space"}},
		{"arguments", serve(cat(edge, []string{"extra"})...), []string{`unexpected arguments ["extra"]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A cancelled context: a serve that wrongly succeeds returns at
			// once instead of hanging the test.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var out strings.Builder
			app := &cli.App{
				Name:           "meshctl",
				Commands:       []*cli.Command{pkiCommand()},
				Writer:         &out,
				ErrWriter:      io.Discard,
				ExitErrHandler: func(*cli.Context, error) {},
			}
			err := app.RunContext(ctx, append([]string{"meshctl"}, tt.args...))
			if err == nil {
				t.Fatalf("succeeded: %s", out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(out.String(), "unix://"+tmp) { // (help text may hold an example)
				t.Errorf("printed addresses although it failed: %q", out.String())
			}
			if _, err := os.Lstat(fresh); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a failed serve left %s behind (%v)", fresh, err)
			}
		})
	}
	if fi, err := os.Stat(openDir); err != nil || fi.Mode().Perm() != 0o770 {
		t.Errorf("refused socket dir was modified: %v %v", fi, err)
	}
	if left, _ := os.ReadDir(openDir); len(left) != 0 {
		t.Errorf("refused socket dir has %v", left)
	}
}

// TestPKIServeSocketInUse checks that a second serve refuses a socket a
// running one serves, and removes the sockets it had already started.
func TestPKIServeSocketInUse(t *testing.T) {
	caDir := initTestCA(t)
	socketDir := shortTempDir(t)
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	first := startServe(func(w io.Writer) error {
		return pkiServe(ctx1, w, serveOptions{CADir: caDir, SocketDir: socketDir, TTL: time.Hour,
			Workloads: []string{"a=spiffe://example.org/a"}})
	})
	_, _, aPath := parseServeLine(t, first.readLines(t, 1)[0])

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	var out strings.Builder
	err := pkiServe(ctx2, &out, serveOptions{CADir: caDir, SocketDir: socketDir, TTL: time.Hour,
		Workloads: []string{"b=spiffe://example.org/b", "a=spiffe://example.org/other"}})
	if err == nil || !strings.Contains(err.Error(), "--workload a") || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second serve: %v, want socket a in use", err)
	}
	if out.Len() != 0 {
		t.Errorf("second serve printed %q", out.String())
	}
	if _, err := os.Lstat(filepath.Join(socketDir, "b.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed serve left b.sock behind (%v)", err)
	}
	svid, err := fetchSVID("unix://" + aPath)
	if err != nil || svid.ID.String() != "spiffe://example.org/a" {
		t.Fatalf("first serve's socket after the failed second: %v %v", svid, err)
	}
	cancel1()
	if err := first.wait(t); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(socketDir); len(left) != 0 {
		t.Errorf("socket dir not empty after shutdown: %v", left)
	}
}
