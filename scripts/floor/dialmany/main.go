// dialmany is the floor for portpatrol's memory with many targets: one
// goroutine per address dials it once, with a timeout, and the program
// exits 0 when every dial succeeded. portpatrol with the same ready
// targets can do no less.
//
//	dialmany ADDRESS...
package main

import (
	"context"
	"net"
	"os"
	"time"
)

func main() {
	addrs := os.Args[1:]
	failed := make(chan bool, len(addrs))
	for _, addr := range addrs {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				c.Close()
			}
			failed <- err != nil
		}()
	}
	for range addrs {
		if <-failed {
			os.Exit(1)
		}
	}
}
