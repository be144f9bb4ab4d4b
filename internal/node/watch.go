package node

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce gathers the burst of events an editor or a Kubernetes volume
// update makes into one reload.
const debounce = 150 * time.Millisecond

// Run serves until ctx is done, reloading on SIGHUP and whenever the config
// file changes, then drains.
func (n *Node) Run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	changed := make(chan struct{}, 1)
	stopWatch := n.watch(ctx, changed)
	defer stopWatch()
	n.watchingOnce.Do(func() { close(n.watching) })

	for {
		select {
		case <-ctx.Done():
			n.log.Info("draining")
			return n.Shutdown(context.Background())
		case <-hup:
			_ = n.Reload()
		case <-changed:
			_ = n.Reload()
		}
	}
}

// watch watches the config file's directory (files are often replaced by
// rename, which a watch on the file itself would lose) and signals changed,
// debounced, when the file's content differs from the last load.
func (n *Node) watch(ctx context.Context, changed chan<- struct{}) func() {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		n.log.Warn("file watch unavailable; reload with SIGHUP", "err", err)
		return func() {}
	}
	path, _ := filepath.Abs(n.opts.ConfigPath)
	if err := w.Add(filepath.Dir(path)); err != nil {
		n.log.Warn("file watch unavailable; reload with SIGHUP", "err", err)
		w.Close()
		return func() {}
	}
	last := fileStamp(path)
	go func() {
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				// The file itself, or a symlink swap (Kubernetes ..data).
				if filepath.Clean(ev.Name) == path || filepath.Base(ev.Name) == "..data" {
					timer = time.After(debounce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				n.log.Warn("file watch error", "err", err)
			case <-timer:
				timer = nil
				if s := fileStamp(path); s != last && s != "" {
					last = s
					select {
					case changed <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	return func() { w.Close() }
}

// fileStamp identifies a version of the file by its content.
func fileStamp(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}
