package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/urfave/cli/v2"
)

// maxSocketPathLen is the longest unix socket path pki serve accepts, the
// same limit pki/workload enforces: sun_path holds 108 bytes on Linux and
// 104 on the BSDs, including the terminating NUL.
const maxSocketPathLen = 103

// workloadNameRE is what a workload name may look like: it becomes the file
// name NAME.sock, so no slashes, no leading dot (the server's own temporary
// directories start with one) and no leading dash.
var workloadNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)

func pkiServeCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve X.509-SVIDs from a CA over the SPIFFE Workload API, one unix socket per workload",
		UsageText: "meshctl pki serve --ca-dir ./ca --socket-dir ./sockets \\\n" +
			"     --workload edge=spiffe://example.org/edge --workload orders=spiffe://example.org/ns/prod/sa/orders \\\n" +
			"     [--ttl 1h] [--uid orders=1001]",
		Description: "Loads the CA in --ca-dir and serves each workload's identity on its own socket,\n" +
			"--socket-dir/NAME.sock (mode 0600; the directory is created with mode 0700 if\n" +
			"missing and refused if group or others can write it). Whoever can open a\n" +
			"socket gets its identity. Once every socket is listening it prints one line\n" +
			"per workload, in the order given:\n\n" +
			"   NAME SPIFFE-ID unix:///ABSOLUTE/PATH/NAME.sock\n\n" +
			"and serves (rotating each SVID at half its lifetime) until SIGINT or SIGTERM,\n" +
			"then removes the sockets. Point a workload at its address, e.g. with\n" +
			"SPIFFE_ENDPOINT_SOCKET=unix:///ABSOLUTE/PATH/NAME.sock.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ca-dir", Usage: "directory of the CA (from pki init)", Required: true},
			&cli.StringFlag{Name: "socket-dir", Usage: "directory for the NAME.sock sockets (created with mode 0700 if missing)", Required: true},
			&cli.StringSliceFlag{Name: "workload", Usage: "NAME=SPIFFE-ID: serve SPIFFE-ID on socket-dir/NAME.sock (repeatable)", Required: true},
			&cli.DurationFlag{Name: "ttl", Usage: "lifetime of each SVID (capped by the CA's); rotated at half of it", Value: workload.DefaultTTL},
			&cli.StringSliceFlag{Name: "uid", Usage: "NAME=UID: serve NAME only to callers running as numeric UID (Linux, SO_PEERCRED; repeatable)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("pki serve: unexpected arguments %q", c.Args().Slice())
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return pkiServe(ctx, c.App.Writer, serveOptions{
				CADir:     c.String("ca-dir"),
				SocketDir: c.String("socket-dir"),
				Workloads: c.StringSlice("workload"),
				UIDs:      c.StringSlice("uid"),
				TTL:       c.Duration("ttl"),
				Logger:    slog.New(slog.NewTextHandler(c.App.ErrWriter, nil)),
			})
		},
	}
}

// serveOptions are the inputs of pkiServe, as given on the command line.
type serveOptions struct {
	CADir     string
	SocketDir string
	Workloads []string // NAME=SPIFFE-ID
	UIDs      []string // NAME=UID
	TTL       time.Duration
	Logger    *slog.Logger // workload API server log; discarded when nil
}

// serveWorkload is one parsed --workload (and its --uid).
type serveWorkload struct {
	name   string
	id     spiffeid.ID
	uid    *int
	socket string // absolute path
}

// pkiServe is the body of `meshctl pki serve`. It checks its inputs, loads
// the CA, starts one Workload API socket per workload, writes one line per
// workload to w ("NAME SPIFFE-ID unix:///path") once all of them listen, and
// serves until ctx is done. It then closes the server, which removes the
// sockets, and returns nil. On any error before that nothing is left
// behind: sockets already started are removed and a socket directory it
// created is removed again.
func pkiServe(ctx context.Context, w io.Writer, opts serveOptions) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("pki serve: %w", err)
		}
	}()

	// Everything that needs no file system first.
	if opts.TTL <= 0 {
		return fmt.Errorf("--ttl must be positive, got %s", opts.TTL)
	}
	if opts.SocketDir == "" {
		return errors.New("--socket-dir is empty")
	}
	if strings.ContainsFunc(opts.SocketDir, unicode.IsSpace) {
		return fmt.Errorf("--socket-dir %q contains white space; the addresses pki serve prints are space-separated, choose a directory without", opts.SocketDir)
	}
	socketDir, err := filepath.Abs(opts.SocketDir)
	if err != nil {
		return fmt.Errorf("--socket-dir: %v", err)
	}
	wls, err := parseServeWorkloads(opts.Workloads, opts.UIDs, socketDir)
	if err != nil {
		return err
	}

	ca, err := pki.LoadCA(opts.CADir)
	if errors.Is(err, pki.ErrNoCA) {
		return fmt.Errorf("no CA in %s; create one with `meshctl pki init --trust-domain %s --dir %s`",
			opts.CADir, wls[0].id.TrustDomain(), opts.CADir)
	}
	if err != nil {
		return err
	}
	for _, wl := range wls {
		if !wl.id.MemberOf(ca.TrustDomain()) {
			return fmt.Errorf("--workload %s: SPIFFE ID %s is in trust domain %s, but the CA in %s is for %s",
				wl.name, wl.id, wl.id.TrustDomain(), opts.CADir, ca.TrustDomain())
		}
	}

	created, err := prepareSocketDir(socketDir)
	if err != nil {
		return err
	}
	defer func() {
		if created {
			// Only if empty: never remove anything but our own directory.
			os.Remove(socketDir)
		}
	}()

	srv, err := workload.New(ca, workload.Options{TTL: opts.TTL, Logger: opts.Logger})
	if err != nil {
		return err
	}
	defer srv.Close()
	for _, wl := range wls {
		if err := srv.AddWorkload(wl.socket, workload.Workload{ID: wl.id, UID: wl.uid}); err != nil {
			return fmt.Errorf("--workload %s: %w", wl.name, err)
		}
	}
	for _, wl := range wls {
		if _, err := fmt.Fprintf(w, "%s %s unix://%s\n", wl.name, wl.id, wl.socket); err != nil {
			return fmt.Errorf("writing addresses: %w", err)
		}
	}

	<-ctx.Done()
	return srv.Close()
}

// parseServeWorkloads parses the --workload and --uid values. It needs
// neither the CA nor the file system.
func parseServeWorkloads(specs, uids []string, socketDir string) ([]*serveWorkload, error) {
	if len(specs) == 0 {
		return nil, errors.New("no --workload given; name at least one, e.g. --workload edge=spiffe://example.org/edge")
	}
	byName := make(map[string]*serveWorkload, len(specs))
	wls := make([]*serveWorkload, 0, len(specs))
	for _, spec := range specs {
		name, rawID, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, fmt.Errorf("--workload %q: want NAME=SPIFFE-ID, e.g. edge=spiffe://example.org/edge", spec)
		}
		if !workloadNameRE.MatchString(name) {
			return nil, fmt.Errorf("--workload %q: invalid name %q; a name becomes the socket file NAME.sock: use letters, digits, '.', '_' and '-', not starting with '.' or '-'", spec, name)
		}
		id, err := spiffeid.FromString(rawID)
		if err != nil {
			return nil, fmt.Errorf("--workload %q: invalid SPIFFE ID %q: %v", spec, rawID, err)
		}
		if id.Path() == "" {
			return nil, fmt.Errorf("--workload %q: SPIFFE ID %s has no path; a workload needs one, e.g. %s/%s", spec, id, id, name)
		}
		if prev, dup := byName[name]; dup {
			return nil, fmt.Errorf("--workload %q: name %s is already used for %s; each workload needs its own name (and socket)", spec, name, prev.id)
		}
		socket := filepath.Join(socketDir, name+".sock")
		if len(socket) > maxSocketPathLen {
			return nil, fmt.Errorf("--workload %q: socket path %s is %d bytes, but unix socket paths are limited to %d; use a shorter --socket-dir or name",
				spec, socket, len(socket), maxSocketPathLen)
		}
		wl := &serveWorkload{name: name, id: id, socket: socket}
		byName[name] = wl
		wls = append(wls, wl)
	}
	for _, spec := range uids {
		name, rawUID, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, fmt.Errorf("--uid %q: want NAME=UID, e.g. orders=1001", spec)
		}
		wl, found := byName[name]
		if !found {
			return nil, fmt.Errorf("--uid %q: no --workload named %q", spec, name)
		}
		uid, err := strconv.Atoi(rawUID)
		if err != nil || uid < 0 {
			return nil, fmt.Errorf("--uid %q: UID %q is not a non-negative number (user names are not looked up; use `id -u USER`)", spec, rawUID)
		}
		if wl.uid != nil {
			return nil, fmt.Errorf("--uid %q: workload %s already has --uid %d", spec, name, *wl.uid)
		}
		wl.uid = &uid
	}
	if len(uids) > 0 && runtime.GOOS != "linux" {
		return nil, fmt.Errorf("--uid needs the caller's credentials (SO_PEERCRED), which only Linux provides; on %s a workload with --uid would never be served", runtime.GOOS)
	}
	return wls, nil
}

// prepareSocketDir makes sure dir is a directory that only its owner can
// write, creating it with mode 0700 if it is missing. created reports
// whether it did.
func prepareSocketDir(dir string) (created bool, err error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, fmt.Errorf("--socket-dir: %v", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil { // independent of the umask
			os.Remove(dir)
			return false, fmt.Errorf("--socket-dir: %v", err)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("--socket-dir: %v", err)
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("--socket-dir %s exists and is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return false, fmt.Errorf("--socket-dir %s is writable by group or others (mode %s), who could replace the sockets; "+
			"run `chmod go-w %s` or choose another directory", dir, perm, dir)
	}
	return false, nil
}
