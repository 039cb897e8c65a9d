//go:build !linux

package proxy

import "net"

func loopEnabled() bool { return false }

func (p *Proxy) serveLoops(ln *net.TCPListener) error { return nil }

type loopSet struct{}

func (p *Proxy) toLoop(cc *clientConn) bool { return false }
