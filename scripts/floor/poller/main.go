// poller is the floor for portpatrol's idle cost: one goroutine per address
// dialling it at a fixed interval, silently, for a fixed time.
//
//	poller INTERVAL DURATION ADDRESS...
package main

import (
	"net"
	"os"
	"time"
)

func main() {
	interval, _ := time.ParseDuration(os.Args[1])
	duration, _ := time.ParseDuration(os.Args[2])
	for _, addr := range os.Args[3:] {
		go func() {
			for {
				if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					c.Close()
				}
				time.Sleep(interval)
			}
		}()
	}
	time.Sleep(duration)
}
