// imports is dialonce plus the packages portpatrol is required to carry
// (TLS and net/http for HTTP targets, x/net/icmp, yaml.v3, encoding/json,
// regexp, log/slog), linked and initialised but never used. Built with the
// release flags, it shows how much of portpatrol's start-up time and size is
// the price of those packages before any of portpatrol's own code runs.
package main

import (
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"

	"golang.org/x/net/icmp"
	"gopkg.in/yaml.v3"
)

// linked keeps one entry point of each package reachable, so the linker
// keeps what portpatrol keeps; it is only filled when an extra argument is
// given, which the bench never does.
var linked []any

func main() {
	if len(os.Args) > 2 {
		linked = append(linked, tls.Client, http.DefaultClient.Do, json.Unmarshal,
			slog.New, regexp.MustCompile, icmp.ListenPacket, yaml.Unmarshal)
	}
	c, err := net.Dial("tcp", os.Args[1])
	if err != nil {
		os.Exit(1)
	}
	c.Close()
}
