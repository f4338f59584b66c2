package main

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// AMQP 0-9-1 (the specification's section 4.2, "Protocol Header" and
// "General Frame Format"): the client opens with a protocol header, and a
// broker that speaks the version answers with a Connection.Start method
// frame; one that does not answers with the header of a version it speaks
// and closes the connection.
var amqpHeader = []byte{'A', 'M', 'Q', 'P', 0, 0, 9, 1}

const (
	amqpFrameMethod = 1
	amqpFrameEnd    = 0xCE
	// maxAMQPFrame bounds the Connection.Start frame. Until Connection.Tune
	// the specification allows frames of frame-min-size, 4096 octets;
	// RabbitMQ's is under 1 KiB.
	maxAMQPFrame = 64 << 10
)

func init() {
	register("amqp", &targetType{
		ready:      "when the broker answers the AMQP 0-9-1 protocol header with Connection.Start",
		properties: amqpProperties,
		settings:   func() any { return &tlsFiles{} },
		finish:     func(s *targetSpec) []error { return tlsOf(s).finish(s) },
		build:      buildAMQP,
	})
}

var amqpProperties = append(tlsProperties(tlsOf),
	timeoutProperty("how long one attempt may take: connect, TLS and the broker's answer"))

// parseAMQPAddress accepts host, host:port and
// amqp[s]://[user[:password]@]host[:port][/vhost]; it returns host:port,
// whether to speak TLS, and the password to keep secret. Errors never quote
// the address, which may hold a password.
func parseAMQPAddress(s string) (hostport string, useTLS bool, password string, err error) {
	if !strings.Contains(s, "://") {
		hostport, err = withDefaultPort(s, "5672")
		return hostport, false, "", err
	}
	if unencodedPassword(s) {
		return "", false, "", errUnencodedPassword
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", false, "", errors.New("not a valid URL (want amqp://[user[:password]@]host[:port][/vhost])")
	}
	port := "5672"
	switch u.Scheme {
	case "amqp":
	case "amqps":
		useTLS, port = true, "5671"
	default:
		return "", false, "", errors.New("want host[:port], amqp://host[:port][/vhost] or amqps://...")
	}
	if u.User != nil {
		password, _ = u.User.Password()
	}
	if u.Hostname() == "" {
		return "", false, password, errors.New("the URL has no host")
	}
	hostport, err = withDefaultPort(u.Host, port)
	return hostport, useTLS, password, err
}

func buildAMQP(s *targetSpec, address string) (built, []error) {
	var problems []error
	hostport, useTLS, password, err := parseAMQPAddress(address)
	if err != nil {
		problems = append(problems, addressError{err})
	}
	var tlsConfig *tls.Config
	if useTLS {
		var errs []error
		tlsConfig, errs = tlsOf(s).config(s, hostWithoutPort(hostport))
		problems = append(problems, errs...)
	} else if *tlsOf(s) != (tlsFiles{}) && err == nil {
		problems = append(problems, errorf("%s: TLS properties are set but the address does not ask for TLS (use amqps://)", s.flag("address")))
	}
	if len(problems) > 0 {
		return built{}, problems
	}
	b := built{checker: amqpCheck{address: hostport, tls: tlsConfig, timeout: s.timeout}, address: redactURL(address),
		pieces: []string{address, redactURL(address), hostport, hostWithoutPort(hostport)}}
	if u, err := url.Parse(address); err == nil && u.User != nil {
		b.pieces = append(b.pieces, urlPieces(u)...)
	}
	if password != "" {
		b.secrets = []string{password, url.PathEscape(password), url.QueryEscape(password)}
	}
	return b, nil
}

// amqpCheck is ready when the broker answers the protocol header with
// Connection.Start. It does not log in: that comes after, and a broker that
// starts the handshake is serving.
type amqpCheck struct {
	address string
	tls     *tls.Config
	timeout time.Duration
}

func (c amqpCheck) check(ctx context.Context) error {
	return exchange(ctx, "tcp", c.address, c.timeout, c.tls, func(conn net.Conn) error {
		if _, err := conn.Write(amqpHeader); err != nil {
			return err
		}
		return readConnectionStart(conn)
	})
}

// readConnectionStart reads the broker's first answer: a frame (type octet,
// channel short, size long, payload, frame-end octet) holding the method
// Connection.Start (class 10, method 10), or a protocol header.
func readConnectionStart(r io.Reader) error {
	var head [7]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return err
	}
	if string(head[:4]) == "AMQP" {
		var offered [8]byte
		copy(offered[:], head[:])
		if _, err := io.ReadFull(r, offered[7:]); err != nil {
			return err
		}
		return errorf("the broker does not speak AMQP 0-9-1: it offered %s", amqpVersionName(offered))
	}
	typ, channel, size := head[0], binary.BigEndian.Uint16(head[1:]), binary.BigEndian.Uint32(head[3:])
	if typ != amqpFrameMethod || channel != 0 {
		return errorf("not an AMQP broker (first frame type %d on channel %d, want a method frame on channel 0)", typ, channel)
	}
	if size < 6 || size > maxAMQPFrame {
		return errorf("not an AMQP broker (frame size %d)", size)
	}
	payload := make([]byte, size+1) // and the frame-end octet
	if _, err := io.ReadFull(r, payload); err != nil {
		return err
	}
	if payload[size] != amqpFrameEnd {
		return errorf("not an AMQP broker (frame end 0x%02X, want 0xCE)", payload[size])
	}
	class, method := binary.BigEndian.Uint16(payload), binary.BigEndian.Uint16(payload[2:])
	if class != 10 || method != 10 {
		return errorf("the broker's first method is %d.%d, want Connection.Start (10.10)", class, method)
	}
	// Connection.Start's first arguments: version-major, version-minor.
	if major, minor := payload[4], payload[5]; major != 0 || minor != 9 {
		return errorf("Connection.Start offers version %d-%d, want 0-9", major, minor)
	}
	return nil
}

// amqpVersionName reads a protocol header a broker sent back: "AMQP", then
// a protocol id and three version octets.
func amqpVersionName(h [8]byte) string {
	name := fmt.Sprintf("the protocol header AMQP %d %d %d %d", h[4], h[5], h[6], h[7])
	switch {
	case h[5] == 1 && h[6] == 0 && h[7] == 0: // id 0 (AMQP), 2 (TLS) or 3 (SASL), version 1.0.0
		return name + " (AMQP 1.0)"
	case h[6] == 0 && h[7] == 10: // "AMQP" class 1, instance 1, version 0-10
		return name + " (AMQP 0-10)"
	case h[6] == 0 && h[7] == 9, h[6] == 8 && h[7] == 0: // the older layout of 0-9 and 0-8
		return fmt.Sprintf("%s (AMQP 0-%d)", name, h[6]+h[7])
	}
	return name
}
