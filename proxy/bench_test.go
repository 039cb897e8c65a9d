package proxy

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// fastUpstream answers every request with a fixed 128-byte body, reading
// and writing raw bytes so that the benchmark measures the proxy, not
// net/http.
func fastUpstream(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	body := bytes.Repeat([]byte("x"), 128)
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 16<<10)
				have := 0
				for {
					n, err := c.Read(buf[have:])
					if err != nil {
						return
					}
					have += n
					// Answer each complete head (requests have no body).
					for {
						i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(resp); err != nil {
							return
						}
						copy(buf, buf[i+4:have])
						have -= i + 4
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// BenchmarkProxyKeepAlive: 64 keep-alive clients through the proxy,
// 90/10 split, sticky cookie set on every (cookieless) request. One op is
// one request end to end.
func BenchmarkProxyKeepAlive(b *testing.B) {
	benchProxy(b, Config{}, "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\n\r\n")
}

// BenchmarkProxyKeepAliveSticky: clients that already carry the cookie.
func BenchmarkProxyKeepAliveSticky(b *testing.B) {
	benchProxy(b, Config{}, "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nCookie: cutover-user=0123456789abcdef\r\n\r\n")
}

func benchProxy(b *testing.B, cfg Config, req string) {
	cfg.Legacy = []string{fastUpstream(b)}
	cfg.New = []string{fastUpstream(b)}
	cfg.Weights = Weights{Legacy: 90, New: 10}
	_, url := startProxy(b, cfg)
	addr := url[len("http://"):]
	const clients = 64
	conns := make([]net.Conn, clients)
	readers := make([]*bufio.Reader, clients)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i], readers[i] = c, bufio.NewReaderSize(c, 4096)
	}
	rq := []byte(req)
	roundTrip := func(c net.Conn, br *bufio.Reader) error {
		if _, err := c.Write(rq); err != nil {
			return err
		}
		n := -1
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return err
			}
			if len(line) <= 2 {
				break
			}
			if len(line) > 16 && string(line[:16]) == "Content-Length: " {
				n, _ = strconv.Atoi(string(bytes.TrimSpace(line[16:])))
			}
		}
		_, err := br.Discard(n)
		return err
	}
	// Warm the pools.
	for i := range conns {
		if err := roundTrip(conns[i], readers[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	var wg sync.WaitGroup
	work := make(chan int, clients)
	per := b.N / clients
	for i := 0; i < clients; i++ {
		n := per
		if i < b.N%clients {
			n++
		}
		work <- n
	}
	close(work)
	errc := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for k := <-work; k > 0; k-- {
				if err := roundTrip(conns[i], readers[i]); err != nil {
					errc <- err
					return
				}
			}
		}(i)
	}
	wg.Wait()
	b.StopTimer()
	// CPU time per request of the whole process (proxy, clients and
	// upstream together): steadier than ns/op on a shared machine.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	select {
	case err := <-errc:
		b.Fatal(err)
	default:
	}
}

func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
