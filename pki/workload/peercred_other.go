//go:build !linux

package workload

import (
	"errors"
	"net"
)

// peerUID is unsupported off Linux: a workload with a UID is never served.
func peerUID(net.Conn) (int, error) {
	return 0, errors.New("peer credentials are not supported on this system")
}
