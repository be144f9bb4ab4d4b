package node

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// trimStartupPages lets go of the executable's read-only pages that only
// start-up touched.
//
// Package initialisation runs code and reads data from nearly every package
// linked in (gRPC, protobuf, memberlist, Prometheus…) once, and the kernel
// maps each touched page with its neighbours (fault-around), so a freshly
// started sidecar has most of its 17 MB of code and read-only data mapped
// although it will never run most of it again. MADV_DONTNEED on a private
// read-only file mapping only drops this process's page-table entries: the
// pages stay in the page cache, shared by every process of the binary, and
// whatever is needed again comes back with a minor fault (the first
// requests after start pay a few hundred of those, well under a
// millisecond). The writable data segment is never touched: its private
// changes would be lost. The sidecar's RSS then reflects its working set.
func trimStartupPages() (int64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var trimmed int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 00400000-00bee000 r-xp 00000000 fe:00 9986148 /path/to/binary
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || (fields[1] != "r-xp" && fields[1] != "r--p") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			return trimmed, fmt.Errorf("unreadable mapping %q", fields[0])
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED); errno != 0 {
			return trimmed, fmt.Errorf("madvise %s: %w", fields[0], errno)
		}
		trimmed += int64(end - start)
	}
	return trimmed, sc.Err()
}
