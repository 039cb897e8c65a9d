// Command backend is a test service for the end-to-end shift tests: it
// answers after a small latency with its name, and runs as its own process
// so that a test can kill it with SIGKILL.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	name := flag.String("name", "backend", "name put in every answer")
	listen := flag.String("listen", "127.0.0.1:0", "address")
	latency := flag.Duration("latency", 2*time.Millisecond, "time each answer takes")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	// The test reads the address from the first line.
	fmt.Println(ln.Addr().String())
	os.Stdout.Sync()
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       120 * time.Second, // above the proxy's upstream idle timeout
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			time.Sleep(*latency)
			w.Header().Set("X-Served-By", *name)
			fmt.Fprintf(w, "%s %s %s\n", *name, r.Method, r.URL.Path)
		}),
	}
	log.Fatal(srv.Serve(ln))
}
