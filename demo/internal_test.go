package demo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSocketDir(t *testing.T) {
	short := t.TempDir()
	dir, temp, err := socketDir(short, len("/catalog-v1-1.sock"))
	if err != nil || temp || dir != filepath.Join(short, "sockets") {
		t.Fatalf("socketDir(%s) = %s, %v, %v; want its sockets subdirectory", short, dir, temp, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v, %v; want a 0700 directory (whoever opens a socket gets its identity)", dir, fi, err)
	}

	long := filepath.Join(t.TempDir(), strings.Repeat("a-long-name/", 8))
	dir, temp, err = socketDir(long, len("/catalog-v1-1.sock"))
	if err != nil || !temp || !strings.HasPrefix(dir, "/tmp/mgd-") {
		t.Fatalf("socketDir(long) = %s, %v, %v; want a new /tmp/mgd-* directory", dir, temp, err)
	}
	defer os.RemoveAll(dir)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v, %v; want a 0700 directory", dir, fi, err)
	}
	if len(dir+"/catalog-v1-1.sock") > maxSocketPath {
		t.Errorf("%s is still too long for a socket path", dir)
	}
}

func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	first, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDir(dir); err == nil || !strings.Contains(err.Error(), "another demo is running") {
		t.Errorf("second lock: %v; want another demo is running", err)
	}
	first.Close()
	again, err := lockDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.Close()
}

func TestSplitDocuments(t *testing.T) {
	src := "# header\n# only comments\n---\na: 1\n---\n\n# c\nb: 2\n"
	docs := splitDocuments([]byte(src))
	if len(docs) != 2 {
		t.Fatalf("%d documents, want 2: %q", len(docs), docs)
	}
	// Each document keeps its lines where they are in the file.
	if got := strings.Count(string(docs[0]), "\n"); !strings.HasPrefix(string(docs[0]), "\n\n\na: 1") || got != 4 {
		t.Errorf("first document %q", docs[0])
	}
	if !strings.HasPrefix(string(docs[1]), strings.Repeat("\n", 5)+"\n# c\nb: 2") {
		t.Errorf("second document %q", docs[1])
	}
}
