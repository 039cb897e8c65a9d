// Command fasthttp is a peer for bench/proxy.sh: the smallest reverse
// proxy on valyala/fasthttp that splits 90/10 between two keep-alive
// upstreams and adds X-Forwarded-For. It shows what the Go runtime with
// the fastest HTTP library reaches on the same machine in the same run,
// beside HAProxy and cutover's own proxy. It is a separate module so that
// cutover does not depend on fasthttp.
package main

import (
	"flag"
	"log"
	"strings"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "", "address to listen on")
	legacy := flag.String("legacy", "", "legacy upstream URL")
	newer := flag.String("new", "", "new upstream URL")
	flag.Parse()
	sides := []*fasthttp.HostClient{
		{Addr: strings.TrimPrefix(*legacy, "http://"), MaxConns: 1024},
		{Addr: strings.TrimPrefix(*newer, "http://"), MaxConns: 1024},
	}
	var n atomic.Uint64
	handler := func(ctx *fasthttp.RequestCtx) {
		side := 0
		if n.Add(1)%10 == 0 {
			side = 1
		}
		ctx.Request.Header.Set("X-Forwarded-For", ctx.RemoteIP().String())
		if err := sides[side].Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusBadGateway)
		}
	}
	log.Fatal(fasthttp.ListenAndServe(*listen, handler))
}
