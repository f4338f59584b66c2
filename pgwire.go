package main

// The postgres type's message framing, apart because every stage of the
// exchange (start-up, TLS, login, queries) reads and writes it the same way.

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// Backend message types (section "Message Formats").
const (
	pgAuthentication     = 'R' // AuthenticationOk, ...CleartextPassword, ...SASL, ...
	pgErrorResponse      = 'E'
	pgNoticeResponse     = 'N'
	pgNegotiateProtocol  = 'v' // NegotiateProtocolVersion, followed by R or E
	pgTerminateMessage   = 'X' // frontend: Terminate
	pgAuthenticationOK   = 0   // the Int32 after 'R': no password needed
	pgFieldSQLSTATE      = 'C' // "Error and Notice Message Fields"
	pgFieldMessage       = 'M'
	pgFieldDetail        = 'D'
	pgReasonTextMaxBytes = 200 // of a server's message quoted in a reason
)

// pgStartupMessage is a StartupMessage: Int32 length (itself included),
// Int32 protocol version, then name/value pairs of NUL-terminated strings,
// and a final NUL.
func pgStartupMessage(user, database string, extra ...[2]string) []byte {
	msg := make([]byte, 8, 64)
	binary.BigEndian.PutUint32(msg[4:], pgProtocol30)
	if len(extra) == 0 {
		extra = [][2]string{{"application_name", "portpatrol"}}
	}
	for _, kv := range append([][2]string{{"user", user}, {"database", database}}, extra...) {
		msg = append(append(append(append(msg, kv[0]...), 0), kv[1]...), 0)
	}
	msg = append(msg, 0)
	binary.BigEndian.PutUint32(msg, uint32(len(msg)))
	return msg
}

// parsePGError reads an ErrorResponse body: fields, each a type byte and a
// NUL-terminated string, ended by a NUL byte.
func parsePGError(body []byte) (pgReply, error) {
	var r pgReply
	for len(body) > 0 && body[0] != 0 {
		field := body[0]
		end := bytes.IndexByte(body[1:], 0)
		if end < 0 {
			return pgReply{}, errors.New("not a PostgreSQL start-up reply: an error field without its end")
		}
		value := string(body[1 : 1+end])
		body = body[2+end:]
		switch field {
		case pgFieldSQLSTATE:
			r.sqlstate = value
		case pgFieldMessage:
			r.message = serverText(value, pgReasonTextMaxBytes)
		case pgFieldDetail:
			r.detail = serverText(value, pgReasonTextMaxBytes)
		}
	}
	if len(body) == 0 {
		return pgReply{}, errors.New("not a PostgreSQL start-up reply: an error without its final NUL")
	}
	if len(r.sqlstate) != 5 {
		r.sqlstate = ""
	}
	return r, nil
}

func describeByte(b byte) string {
	if ' ' <= b && b < 0x7f {
		return fmt.Sprintf("%q", rune(b))
	}
	return fmt.Sprintf("byte 0x%02x", b)
}

// pgTerminate ends a session as the protocol says, and reads what the
// server still sends until it closes, so that our close is a clean one
// rather than a reset.
func pgTerminate(conn io.ReadWriter) {
	conn.Write([]byte{pgTerminateMessage, 0, 0, 0, 4})
	switch c := conn.(type) {
	case *net.TCPConn:
		c.CloseWrite()
	case *net.UnixConn:
		c.CloseWrite()
	case *tls.Conn:
		c.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(conn, pgMaxMessages*pgMaxMessage))
}

// readPGMessage reads one message whose type is in kinds: a type byte, an
// Int32 length (itself included) of at most pgMaxMessage, then the body.
func readPGMessage(r io.Reader, kinds string) (byte, []byte, error) {
	return readPGMessageMax(r, kinds, pgMaxMessage)
}

// readPGMessageMax is readPGMessage with a bound of its own.
func readPGMessageMax(r io.Reader, kinds string, max uint32) (byte, []byte, error) {
	var header [5]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return 0, nil, err
	}
	kind, length := header[0], binary.BigEndian.Uint32(header[1:])
	if strings.IndexByte(kinds, kind) < 0 {
		return 0, nil, errorf("not a PostgreSQL server: its reply starts with %s", describeByte(kind))
	}
	if length < 4 || length > max {
		return 0, nil, errorf("not a PostgreSQL start-up reply: message %q declares %d bytes (at most %d expected)", kind, length, max)
	}
	body := make([]byte, length-4)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return kind, body, nil
}
