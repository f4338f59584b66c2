package main

// The postgres type's queries after the login, apart because they are a
// second protocol (simple and extended query) on an established session:
// the empty query, target_session_attrs's checks and the query property.

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Simple query protocol messages (section "Message Formats").
const (
	pgQuery              = 'Q'
	pgEmptyQueryResponse = 'I'
	pgCommandComplete    = 'C'
	pgDataRow            = 'D'
	pgRowDescription     = 'T'
	// pgQueryWait is how long the empty query after the login may take: a
	// server answers it at once, a paused pooler never.
	pgQueryWait = time.Second
)

// sessionAttrs checks target_session_attrs as libpq does: from the
// in_hot_standby and default_transaction_read_only the server reports
// (PostgreSQL 14 and later), else by asking.
func (c pgCheck) sessionAttrs(conn io.ReadWriter, attrs string, status map[string]string) error {
	switch attrs {
	case "read-write", "read-only":
		readOnly := status["default_transaction_read_only"] == "on" || status["in_hot_standby"] == "on"
		if _, reported := status["in_hot_standby"]; !reported {
			v, _, err := c.simpleQuery(conn, "SHOW transaction_read_only")
			if err != nil {
				return err
			}
			readOnly = v == "on"
		}
		switch {
		case readOnly && attrs == "read-write":
			return errors.New("session is read-only, and target_session_attrs is read-write")
		case !readOnly && attrs == "read-only":
			return errors.New("session is not read-only, and target_session_attrs is read-only")
		}
	case "primary", "standby":
		standby, reported := status["in_hot_standby"]
		if !reported {
			v, _, err := c.simpleQuery(conn, "SELECT pg_catalog.pg_is_in_recovery()")
			if err != nil {
				return err
			}
			standby = map[string]string{"t": "on"}[v]
		}
		switch {
		case standby == "on" && attrs == "primary":
			return errors.New("server is in hot standby mode, and target_session_attrs is primary")
		case standby != "on" && attrs == "standby":
			return errors.New("server is not in hot standby mode, and target_session_attrs wants a standby")
		}
	}
	return nil
}

// simpleQuery runs sql with the simple query protocol (a Query message) and
// returns the first value of the first row, if any, within pgQueryWait: the
// server itself must answer, which a paused pooler does not.
func (c pgCheck) simpleQuery(conn io.ReadWriter, sql string) (first string, hasRow bool, err error) {
	msg := []byte{pgQuery, 0, 0, 0, 0}
	msg = append(append(msg, sql...), 0)
	binary.BigEndian.PutUint32(msg[1:], uint32(len(msg)-1))
	if _, err := conn.Write(msg); err != nil {
		return "", false, err
	}
	if d, ok := conn.(interface{ SetReadDeadline(time.Time) error }); ok {
		// Within the attempt's timeout, which is restored after: exchange
		// still ends the attempt early when it is cancelled.
		d.SetReadDeadline(time.Now().Add(min(pgQueryWait, c.timeout)))
		defer d.SetReadDeadline(time.Now().Add(c.timeout))
	}
	var failure error
	for range pgMaxLoginMessages {
		kind, body, err := readPGMessage(conn, "ENSIZCDTKA")
		if err != nil {
			if os.IsTimeout(err) {
				return "", false, finalReason{errorf("no answer to a query within %v (a paused pooler, or its server down?)", pgQueryWait)}
			}
			return "", false, err
		}
		switch kind {
		case pgErrorResponse:
			r, err := parsePGError(body)
			if err != nil {
				return "", false, err
			}
			failure = errorf("%s: %s", r.sqlstate, r.message)
		case pgDataRow:
			if !hasRow {
				hasRow = true
				first, _ = pgFirstValue(body)
			}
		case pgReadyForQuery:
			return first, hasRow, failure
		}
	}
	return "", false, errorf("no ReadyForQuery in the first %d messages of a query's answer", pgMaxLoginMessages)
}

// pgFirstValue is the first column of a DataRow: Int16 count, then per
// column an Int32 length (-1 for NULL) and the bytes.
func pgFirstValue(row []byte) (value string, null bool) {
	if len(row) < 6 || binary.BigEndian.Uint16(row) == 0 {
		return "", true
	}
	n := int32(binary.BigEndian.Uint32(row[2:]))
	if n < 0 || int(n) > len(row)-6 {
		return "", true
	}
	return string(row[6 : 6+n]), false
}

// Extended query protocol messages (section "Message Formats").
const (
	pgParse           = 'P'
	pgBind            = 'B'
	pgExecute         = 'E'
	pgSync            = 'S'
	pgParseComplete   = '1'
	pgBindComplete    = '2'
	pgNoData          = 'n'
	pgPortalSuspended = 's'
	// pgMaxRow bounds the DataRow of the query property.
	pgMaxRow = 64 << 10
)

// readOnlyQuery runs the query property as one statement in a READ ONLY
// transaction: START TRANSACTION READ ONLY, then the statement with the
// extended protocol (Parse takes one statement only), one row asked for, then
// Sync. A write fails in the server (25006) and the session ends without a
// commit. Ready when the first row's first value is true.
func (c pgCheck) readOnlyQuery(conn io.ReadWriter) error {
	if _, err := conn.Write(pgReadOnlyQueryMessages(c.query)); err != nil {
		return err
	}
	var failure error
	var first string
	var null, hasRow bool
	for range 2 * pgMaxLoginMessages {
		kind, body, err := readPGMessageMax(conn, "ENS12nsCDIZ", pgMaxRow)
		if err != nil {
			if os.IsTimeout(err) {
				return finalReason{errorf("no answer to the query within %v", c.timeout)}
			}
			return err
		}
		switch kind {
		case pgErrorResponse:
			r, err := parsePGError(body)
			if err != nil {
				return err
			}
			if failure == nil {
				failure = errorf("the query failed: %s: %s", r.sqlstate, r.message)
			}
		case pgDataRow:
			if !hasRow {
				hasRow = true
				first, null = pgFirstValue(body)
			}
		case pgReadyForQuery:
			if failure != nil {
				return failure
			}
			return pgQueryVerdict(first, null, hasRow)
		}
	}
	return errorf("no ReadyForQuery in the first %d messages of the query's answer", 2*pgMaxLoginMessages)
}

// pgReadOnlyQueryMessages are Parse, Bind and Execute for START TRANSACTION
// READ ONLY and for sql (one row), then Sync: sent at once.
func pgReadOnlyQueryMessages(sql string) []byte {
	var msg []byte
	add := func(kind byte, parts ...[]byte) {
		start := len(msg)
		msg = append(msg, kind, 0, 0, 0, 0)
		for _, p := range parts {
			msg = append(msg, p...)
		}
		binary.BigEndian.PutUint32(msg[start+1:], uint32(len(msg)-start-1))
	}
	for i, sql := range []string{"START TRANSACTION READ ONLY", sql} {
		add(pgParse, []byte{0}, []byte(sql), []byte{0, 0, 0}) // unnamed, no parameter types
		add(pgBind, []byte{0, 0}, []byte{0, 0, 0, 0, 0, 0})   // unnamed portal and statement, no formats, parameters or result formats
		rows := []byte{0, 0, 0, 0}
		if i == 1 {
			rows[3] = 1 // one row is enough
		}
		add(pgExecute, []byte{0}, rows)
	}
	add(pgSync)
	return msg
}

// pgQueryVerdict: ready when the query's first row's first value is true.
func pgQueryVerdict(first string, null, hasRow bool) error {
	switch {
	case !hasRow:
		return errors.New("the query returned no rows")
	case null:
		return errors.New("the first value is false (NULL)")
	case !pgTrue(first):
		return errorf("the first value is false (%s)", quoteString(serverText(first, 40)))
	}
	return nil
}

// pgTrue: a value in text format that is not false: after trimming white
// space and in any case, not empty, f, false, n, no, off, or a number equal
// to zero (docs/types/postgres.md lists the same).
func pgTrue(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	switch v {
	case "", "f", "false", "n", "no", "off":
		return false
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f == 0 {
		return false
	}
	return true
}
