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
		ready:      "when the broker answers the AMQP 0-9-1 protocol header with Connection.Start; with a user and password (in the URL, or the password property), when it opens the vhost for them",
		stillReady: "still answers as a broker",
		properties: amqpProperties,
		settings:   func() any { return &amqpSettings{} },
		finish:     func(s *targetSpec) []error { return amqpOf(s).tlsFiles.finish(s) },
		build:      buildAMQP,
	})
}

var amqpProperties = append([]property{
	passwordProperty("log in as the URL's user with this password; wins over the URL's; may be a reference (file:/run/secrets/amqp)", func(s *targetSpec) *string { return &amqpOf(s).password }),
	{name: "queue", arg: "NAME,...", help: "also require these queues in the vhost (a passive Queue.Declare after the login)",
		set: func(s *targetSpec, v string) error {
			for _, q := range strings.Split(v, ",") {
				if q = strings.TrimSpace(q); q == "" || len(q) > 255 {
					return errors.New("want queue names of 1 to 255 bytes, separated by commas")
				}
				amqpOf(s).queues = append(amqpOf(s).queues, q)
			}
			return nil
		}},
}, append(tlsProperties(func(s *targetSpec) *tlsFiles { return &amqpOf(s).tlsFiles }),
	timeoutProperty("how long one attempt may take: connect, TLS and the broker's answer"))...)

type amqpSettings struct {
	tlsFiles
	password string   // may be a reference until built
	queues   []string // passively declared after the login
}

func amqpOf(s *targetSpec) *amqpSettings { return s.settings.(*amqpSettings) }

// parseAMQPAddress accepts host, host:port and
// amqp[s]://[user[:password]@]host[:port][/vhost]; it returns host:port,
// whether to speak TLS, and the password to keep secret. Errors never quote
// the address, which may hold a password.
func parseAMQPAddress(s string) (hostport string, useTLS bool, password string, err error) {
	if !strings.Contains(s, "://") {
		hostport, err = withDefaultPort(s, "5672")
		return hostport, false, "", err
	}
	if err := unencodedPassword(s, false); err != nil {
		return "", false, "", err
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
		//lint:ignore ST1005 the message ends with a URL form, whose ... is part of it
		return "", false, "", errors.New("want host[:port], amqp://host[:port][/vhost] or amqps://...")
	}
	var hasPassword bool
	if u.User != nil {
		password, hasPassword = u.User.Password()
	}
	if u.Hostname() == "" {
		return "", false, password, errors.New("the URL has no host")
	}
	hostport, err = withDefaultPort(u.Host, port)
	if err == nil && hasPassword && password == "" {
		err = errEmptyPassword // unless the password property gives one
	}
	return hostport, useTLS, password, err
}

func buildAMQP(s *targetSpec, address string) (built, []error) {
	var problems []error
	hostport, useTLS, password, err := parseAMQPAddress(address)
	if err == errEmptyPassword && amqpOf(s).password != "" {
		err = nil
	}
	if err != nil {
		problems = append(problems, addressError{err})
	}
	var tlsConfig *tls.Config
	if useTLS {
		var errs []error
		tlsConfig, errs = amqpOf(s).tlsFiles.config(s, hostWithoutPort(hostport))
		problems = append(problems, errs...)
	} else if amqpOf(s).tlsFiles != (tlsFiles{}) && err == nil {
		problems = append(problems, errorf("%s: TLS properties are set but the address does not ask for TLS (use amqps://)", s.flag("address")))
	}
	urlPassword := password
	if p := amqpOf(s).password; p != "" && err == nil {
		// The property wins over the URL's password; the URL names the user.
		if password, err = resolveProperty(s.flag("password"), p); err != nil {
			problems = append(problems, err)
		} else if u, _ := url.Parse(address); !strings.Contains(address, "://") || u.User == nil || u.User.Username() == "" {
			problems = append(problems, errorf("%s needs a user in the address: amqp://user@host/vhost", s.flag("password")))
		} else if password == "" {
			problems = append(problems, errorf("%s: the password is empty", s.flag("password")))
		}
	}
	if len(problems) > 0 {
		return built{}, problems
	}
	c := amqpCheck{address: hostport, tls: tlsConfig, timeout: s.timeout}
	if password != "" {
		u, _ := url.Parse(address) // parsed above
		c.login = &amqpLogin{user: u.User.Username(), password: password, vhost: "/"}
		if path := u.EscapedPath(); path != "" && path != "/" {
			c.login.vhost, _ = url.PathUnescape(path[1:])
		}
		if len(c.login.vhost) > 255 {
			return built{}, []error{addressError{errors.New("the vhost is longer than 255 bytes")}}
		}
		c.login.queues = amqpOf(s).queues
	} else if s.isGiven("queue") {
		return built{}, []error{errorf("%s: a queue is seen after a login: give amqp://user:password@host/vhost, or amqp://user@host/vhost and the password property", s.flag("queue"))}
	}
	b := built{checker: c, address: redactURL(address),
		pieces: []string{address, redactURL(address), hostport, hostWithoutPort(hostport)}}
	if u, err := url.Parse(address); err == nil && u.User != nil {
		b.pieces = append(b.pieces, urlPieces(u)...)
	}
	for _, p := range []string{urlPassword, password} {
		if p != "" {
			b.secrets = append(b.secrets, p, url.PathEscape(p), url.QueryEscape(p))
		}
	}
	return b, nil
}

// amqpCheck is ready when the broker answers the protocol header with
// Connection.Start; with credentials, when it also opens the vhost.
type amqpCheck struct {
	address string
	tls     *tls.Config
	timeout time.Duration
	login   *amqpLogin // nil: no credentials in the URL
}

type amqpLogin struct {
	user, password, vhost string
	queues                []string
}

func (c amqpCheck) check(ctx context.Context) error {
	return exchange(ctx, "tcp", c.address, c.timeout, c.tls, func(conn net.Conn) error {
		if _, err := conn.Write(amqpHeader); err != nil {
			return err
		}
		if err := readConnectionStart(conn); err != nil {
			return err
		}
		if c.login == nil {
			return errAMQPNoLogin
		}
		return c.login.open(conn)
	})
}

var errAMQPNoLogin = blind{"no login without a user and password: a missing vhost, wrong credentials or blocked publishers cannot be seen; give amqp://user:password@host/vhost"}

// Methods of class connection (10) after Start (the specification's
// section 1.4.2).
const (
	amqpStartOk = 11
	amqpTune    = 30
	amqpTuneOk  = 31
	amqpOpen    = 40
	amqpOpenOk  = 41
	amqpClose   = 50
	amqpCloseOk = 51
	amqpBlocked = 60 // RabbitMQ's extension, for clients that declare connection.blocked
	// amqpMaxLoginFrames bounds the frames one login reads (heartbeats
	// may come between the methods).
	amqpMaxLoginFrames = 16
	amqpFrameHeartbeat = 8
)

// open logs in with PLAIN, tunes, opens the vhost, and closes the
// connection politely. The broker's Connection.Close is the reason, and so
// is a Connection.Blocked on the way (a resource alarm blocks publishers).
func (l *amqpLogin) open(conn net.Conn) error {
	response := "\x00" + l.user + "\x00" + l.password
	startOk := binary.BigEndian.AppendUint32([]byte(amqpClientProperties+"\x05PLAIN"), uint32(len(response)))
	startOk = append(append(startOk, response...), "\x05en_US"...)
	if _, err := conn.Write(amqpMethod(amqpStartOk, startOk)); err != nil {
		return err
	}
	method, args, err := readAMQPMethod(conn)
	if err != nil {
		return err
	}
	if method != amqpTune || len(args) < 8 {
		return amqpUnexpected(conn, "Connection.Tune", method, args)
	}
	// TuneOk: the broker's channel-max and frame-max, no heartbeats.
	if _, err := conn.Write(amqpMethod(amqpTuneOk, append(args[:6:6], 0, 0))); err != nil {
		return err
	}
	// Open: virtual-host, two reserved fields (an empty shortstr, a bit).
	if _, err := conn.Write(amqpMethod(amqpOpen, append(append([]byte{byte(len(l.vhost))}, l.vhost...), 0, 0))); err != nil {
		return err
	}
	if method, args, err = readAMQPMethod(conn); err != nil {
		return err
	}
	var blocked error
	if method == amqpBlocked {
		blocked = amqpBlockedReason(args)
		if method, args, err = readAMQPMethod(conn); err != nil {
			return err
		}
	}
	if method != amqpOpenOk {
		return amqpUnexpected(conn, "Connection.OpenOk", method, args)
	}
	missing, err := l.declareQueues(conn, &blocked)
	if err != nil {
		return err
	}
	// Close, and read up to CloseOk: a Connection.Blocked sent on open
	// comes before it.
	if _, err := conn.Write(amqpMethod(amqpClose, []byte("\x00\xc8\x07goodbye\x00\x00\x00\x00"))); err != nil { // 200, no class or method
		return err
	}
	for {
		method, args, err := readAMQPMethod(conn)
		if err != nil {
			return err
		}
		switch method {
		case amqpBlocked:
			blocked = amqpBlockedReason(args)
			continue
		case amqpCloseOk, amqpClose:
		default:
			continue // anything else on the way out
		}
		if missing != nil {
			return missing
		}
		return blocked
	}
}

func amqpBlockedReason(args []byte) error {
	reason := "no reason given"
	if len(args) > 0 && int(args[0]) < len(args) {
		reason = serverText(string(args[1:1+int(args[0])]), 200)
	}
	return errorf("publishers are blocked: %s", reason)
}

// amqpUnexpected is the reason for a method other than the one expected:
// the broker's Connection.Close (answered with CloseOk, as the protocol
// asks) with its code and text, or a protocol error.
func amqpUnexpected(conn net.Conn, want string, method uint16, args []byte) error {
	if method != amqpClose {
		return errorf("not an AMQP broker: method 10.%d where %s was due", method, want)
	}
	conn.Write(amqpMethod(amqpCloseOk, nil))
	// reply-code short, reply-text shortstr, class-id, method-id
	if len(args) < 3 || len(args) < 3+int(args[2]) {
		return errors.New("the broker closed the connection without a reason")
	}
	code := binary.BigEndian.Uint16(args)
	err := errorf("the broker closed the connection: %d %s", code, serverText(string(args[3:3+int(args[2])]), 200))
	if code == 403 || code == 530 { // ACCESS_REFUSED, NOT_ALLOWED (a vhost refused): there, but will not tell
		return unseen{err}
	}
	return err
}

// readAMQPMethod reads frames until a method of class connection on channel
// 0, skipping heartbeats, and returns its method id and arguments.
func readAMQPMethod(r io.Reader) (uint16, []byte, error) {
	for range amqpMaxLoginFrames {
		typ, payload, err := readAMQPFrame(r)
		if err != nil {
			return 0, nil, err
		}
		if typ == amqpFrameHeartbeat {
			continue
		}
		if typ != amqpFrameMethod || len(payload) < 4 || binary.BigEndian.Uint16(payload) != 10 {
			return 0, nil, errorf("not an AMQP broker: a frame of type %d where a connection method was due", typ)
		}
		return binary.BigEndian.Uint16(payload[2:]), payload[4:], nil
	}
	return 0, nil, errorf("no connection method in %d frames", amqpMaxLoginFrames)
}

// readAMQPFrame reads one frame on channel 0 of at most maxAMQPFrame bytes.
func readAMQPFrame(r io.Reader) (byte, []byte, error) {
	typ, channel, payload, err := readAMQPChannelFrame(r)
	if err == nil && channel != 0 {
		return 0, nil, errorf("not an AMQP broker (a frame on channel %d)", channel)
	}
	return typ, payload, err
}

// readAMQPChannelFrame reads one frame of at most maxAMQPFrame bytes, on
// any channel.
func readAMQPChannelFrame(r io.Reader) (typ byte, channel uint16, payload []byte, err error) {
	var head [7]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, 0, nil, err
	}
	payload, err = readAMQPPayload(r, binary.BigEndian.Uint32(head[3:]))
	return head[0], binary.BigEndian.Uint16(head[1:]), payload, err
}

// readAMQPPayload reads a frame's payload of size bytes, checked against
// maxAMQPFrame before anything is allocated, and its frame-end octet.
func readAMQPPayload(r io.Reader, size uint32) ([]byte, error) {
	if size > maxAMQPFrame {
		return nil, errorf("not an AMQP broker (frame size %d)", size)
	}
	payload := make([]byte, size+1)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, err
	}
	if payload[size] != amqpFrameEnd {
		return nil, errorf("not an AMQP broker (frame end 0x%02X, want 0xCE)", payload[size])
	}
	return payload[:size], nil
}

// amqpMethod is a method frame of class connection on channel 0.
func amqpMethod(method uint16, args []byte) []byte {
	return amqpChannelMethod(0, 10, method, args)
}

// amqpChannelMethod is a method frame of any class on any channel. Out of
// line: inlined at each call it cost the binary 1.4 KB.
//
//go:noinline
func amqpChannelMethod(channel, class, method uint16, args []byte) []byte {
	b := binary.BigEndian.AppendUint32([]byte{amqpFrameMethod, byte(channel >> 8), byte(channel)}, uint32(4+len(args)))
	b = append(b, byte(class>>8), byte(class), byte(method>>8), byte(method))
	return append(append(b, args...), amqpFrameEnd)
}

// amqpClientProperties is StartOk's client-properties field table,
// {product: "portpatrol", capabilities: {authentication_failure_close:
// true, connection.blocked: true}}: the capabilities make RabbitMQ say why
// a login failed (403) instead of closing the socket, and announce that
// publishers are blocked. A table is a long size, then per field a
// shortstr name, a type octet (S long string, F table, t boolean) and the
// value.
const amqpClientProperties = "\x00\x00\x00\x5d" +
	"\x07productS\x00\x00\x00\x0aportpatrol" +
	"\x0ccapabilitiesF\x00\x00\x00\x34" +
	"\x1cauthentication_failure_closet\x01" +
	"\x12connection.blockedt\x01"

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
	if size < 6 {
		return errorf("not an AMQP broker (frame size %d)", size)
	}
	payload, err := readAMQPPayload(r, size)
	if err != nil {
		return err
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

// Classes channel (20) and queue (50), and their methods (the
// specification's sections 1.5 and 1.7). The queues are declared on
// channel 1.
const (
	amqpClassChannel   = 20
	amqpChannelOpen    = 10
	amqpChannelOpenOk  = 11
	amqpChannelClose   = 40
	amqpChannelCloseOk = 41
	amqpClassQueue     = 50
	amqpDeclare        = 10
	amqpDeclareOk      = 11
)

// declareQueues opens a channel and declares each queue passively, which
// creates nothing: the broker answers Queue.DeclareOk for a queue that
// exists and closes the channel with 404 NOT_FOUND for one that does not.
// missing is that reason, or the broker's for another refusal; err ends the
// connection. A Connection.Blocked on the way is kept in blocked.
func (l *amqpLogin) declareQueues(conn net.Conn, blocked *error) (missing, err error) {
	if len(l.queues) == 0 {
		return nil, nil
	}
	// Channel.Open's one argument is a reserved empty shortstr.
	if _, err := conn.Write(amqpChannelMethod(1, amqpClassChannel, amqpChannelOpen, []byte{0})); err != nil {
		return nil, err
	}
	if _, missing, err = amqpChannelReply(conn, blocked, amqpClassChannel, amqpChannelOpenOk, "Channel.OpenOk"); missing != nil || err != nil {
		return missing, err
	}
	for _, q := range l.queues {
		// Queue.Declare: a reserved short, the queue, the bits passive
		// (set), durable, exclusive, auto-delete and no-wait, and an
		// empty table of arguments.
		args := append(append([]byte{0, 0, byte(len(q))}, q...), 1, 0, 0, 0, 0)
		if _, err := conn.Write(amqpChannelMethod(1, amqpClassQueue, amqpDeclare, args)); err != nil {
			return nil, err
		}
		code, missing, err := amqpChannelReply(conn, blocked, amqpClassQueue, amqpDeclareOk, "Queue.DeclareOk")
		switch {
		case err != nil:
			return nil, err
		case code == 404:
			return errorf("no queue %s in vhost %s", quoteValue(q), quoteValue(l.vhost)), nil
		case missing != nil:
			return errorf("queue %s: %w", quoteValue(q), missing), nil
		}
	}
	return nil, nil
}

// channelReply reads frames until the method due on channel 1. A
// Channel.Close there is answered with CloseOk and returned as refused, with
// its reply-code (403 as unseen: the user may not look); a Connection.Close
// on channel 0 ends the connection.
func amqpChannelReply(conn net.Conn, blocked *error, class, method uint16, want string) (code uint16, refused, err error) {
	for range amqpMaxLoginFrames {
		typ, channel, payload, err := readAMQPChannelFrame(conn)
		if err != nil {
			return 0, nil, err
		}
		if typ == amqpFrameHeartbeat {
			continue
		}
		if typ != amqpFrameMethod || len(payload) < 4 {
			return 0, nil, errorf("not an AMQP broker: a frame of type %d where %s was due", typ, want)
		}
		c, m, args := binary.BigEndian.Uint16(payload), binary.BigEndian.Uint16(payload[2:]), payload[4:]
		switch {
		case channel == 0 && c == 10 && m == amqpBlocked:
			*blocked = amqpBlockedReason(args)
			continue
		case channel == 0 && c == 10:
			return 0, nil, amqpUnexpected(conn, want, m, args)
		case channel == 1 && c == class && m == method:
			return 0, nil, nil
		case channel == 1 && c == amqpClassChannel && m == amqpChannelClose:
			conn.Write(amqpChannelMethod(1, amqpClassChannel, amqpChannelCloseOk, nil))
			// reply-code short, reply-text shortstr
			if len(args) < 3 || len(args) < 3+int(args[2]) {
				return 0, errors.New("the broker closed the channel without a reason"), nil
			}
			code := binary.BigEndian.Uint16(args)
			refused := errorf("the broker closed the channel: %d %s", code, serverText(string(args[3:3+int(args[2])]), 200))
			if code == 403 {
				refused = unseen{refused}
			}
			return code, refused, nil
		}
		return 0, nil, errorf("not an AMQP broker: method %d.%d on channel %d where %s was due", c, m, channel, want)
	}
	return 0, nil, errorf("no %s in %d frames", want, amqpMaxLoginFrames)
}
