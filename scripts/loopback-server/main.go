// loopback-server answers every HTTP request with 200 on the address given,
// for scripts that need a ready TCP and HTTP target (the image test). It
// exits after -for, so a script that fails cannot leave it behind.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	lifetime := flag.Duration("for", 5*time.Minute, "exit after this long")
	flag.Parse()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	time.AfterFunc(*lifetime, func() { l.Close() })
	http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
}
