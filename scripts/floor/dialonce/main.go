// dialonce is the floor for portpatrol's start-up: the least a static Go
// program can do to learn that a TCP port accepts. Exit 0 if it does.
package main

import (
	"net"
	"os"
)

func main() {
	c, err := net.Dial("tcp", os.Args[1])
	if err != nil {
		os.Exit(1)
	}
	c.Close()
}
