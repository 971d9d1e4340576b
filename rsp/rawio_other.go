//go:build !linux

package rsp

import (
	"io"
	"net"
)

// fastIO returns conn: raw socket I/O is Linux's (rawio_linux.go).
func fastIO(conn net.Conn) io.ReadWriter { return conn }
