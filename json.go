// A JSON reader and writer of our own. encoding/json, with the reflection
// it drives, costs 240 KB of the release binary, more than the whole share
// of a target type; what portpatrol needs of JSON is a tree to walk (json:
// references, http json expectations, Kubernetes replies) and a few values
// to write back as text.
package main

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonNumber is a number as written in the document: 1.50 stays 1.50, big
// ids stay exact.
type jsonNumber string

// jsonMaxDepth bounds nesting, as encoding/json does, so a hostile document
// of brackets cannot exhaust the stack.
const jsonMaxDepth = 10000

var (
	errJSONEmpty     = errors.New("holds no value")
	errJSONTruncated = errors.New("ends inside a value")
	errJSONMore      = errors.New("more than one value")
)

// jsonSyntaxError is the 1-based position of the first byte that cannot
// stand where it is.
type jsonSyntaxError struct{ offset int }

func (e jsonSyntaxError) Error() string { return "syntax error at byte " + strconv.Itoa(e.offset) }

// parseJSON reads exactly one JSON value (RFC 8259) into map[string]any,
// []any, string, jsonNumber, bool and nil, as encoding/json does with
// UseNumber: the last of repeated keys wins, and bad UTF-8 or a lone
// surrogate in a string reads as U+FFFD.
func parseJSON(data []byte) (any, error) {
	r := jsonReader{data: data}
	r.space()
	if r.pos == len(data) {
		return nil, errJSONEmpty
	}
	v, err := r.value(0)
	if err != nil {
		return nil, err
	}
	r.space()
	if r.pos < len(data) {
		return nil, errJSONMore
	}
	return v, nil
}

type jsonReader struct {
	data []byte
	pos  int
}

func (r *jsonReader) space() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// fail is the error for the byte at pos: past the end, the value was cut.
func (r *jsonReader) fail() error {
	if r.pos >= len(r.data) {
		return errJSONTruncated
	}
	return jsonSyntaxError{r.pos + 1}
}

func (r *jsonReader) value(depth int) (any, error) {
	if r.pos >= len(r.data) {
		return nil, errJSONTruncated
	}
	switch c := r.data[r.pos]; {
	case c == '{' || c == '[':
		if depth >= jsonMaxDepth {
			return nil, r.fail()
		}
		r.pos++
		if c == '{' {
			return r.object(depth + 1)
		}
		return r.array(depth + 1)
	case c == '"':
		return r.string()
	case c == '-' || c >= '0' && c <= '9':
		return r.number()
	case c == 't':
		return true, r.word("true")
	case c == 'f':
		return false, r.word("false")
	case c == 'n':
		return nil, r.word("null")
	}
	return nil, r.fail()
}

func (r *jsonReader) word(w string) error {
	for i := range len(w) {
		if r.pos >= len(r.data) || r.data[r.pos] != w[i] {
			return r.fail()
		}
		r.pos++
	}
	return nil
}

func (r *jsonReader) object(depth int) (any, error) {
	m := map[string]any{}
	r.space()
	if r.pos < len(r.data) && r.data[r.pos] == '}' {
		r.pos++
		return m, nil
	}
	for {
		if r.pos >= len(r.data) || r.data[r.pos] != '"' {
			return nil, r.fail()
		}
		key, err := r.string()
		if err != nil {
			return nil, err
		}
		r.space()
		if r.pos >= len(r.data) || r.data[r.pos] != ':' {
			return nil, r.fail()
		}
		r.pos++
		r.space()
		v, err := r.value(depth)
		if err != nil {
			return nil, err
		}
		m[key] = v
		r.space()
		if r.pos >= len(r.data) {
			return nil, errJSONTruncated
		}
		switch r.data[r.pos] {
		case ',':
			r.pos++
			r.space()
		case '}':
			r.pos++
			return m, nil
		default:
			return nil, r.fail()
		}
	}
}

func (r *jsonReader) array(depth int) (any, error) {
	a := []any{}
	r.space()
	if r.pos < len(r.data) && r.data[r.pos] == ']' {
		r.pos++
		return a, nil
	}
	for {
		r.space()
		v, err := r.value(depth)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		r.space()
		if r.pos >= len(r.data) {
			return nil, errJSONTruncated
		}
		switch r.data[r.pos] {
		case ',':
			r.pos++
		case ']':
			r.pos++
			return a, nil
		default:
			return nil, r.fail()
		}
	}
}

// number checks the grammar -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
// and keeps the text.
func (r *jsonReader) number() (any, error) {
	start := r.pos
	digits := func() error {
		if r.pos >= len(r.data) || r.data[r.pos] < '0' || r.data[r.pos] > '9' {
			return r.fail()
		}
		for r.pos < len(r.data) && r.data[r.pos] >= '0' && r.data[r.pos] <= '9' {
			r.pos++
		}
		return nil
	}
	if r.data[r.pos] == '-' {
		r.pos++
	}
	if r.pos < len(r.data) && r.data[r.pos] == '0' {
		r.pos++
	} else if err := digits(); err != nil {
		return nil, err
	}
	if r.pos < len(r.data) && r.data[r.pos] == '.' {
		r.pos++
		if err := digits(); err != nil {
			return nil, err
		}
	}
	if r.pos < len(r.data) && (r.data[r.pos] == 'e' || r.data[r.pos] == 'E') {
		r.pos++
		if r.pos < len(r.data) && (r.data[r.pos] == '+' || r.data[r.pos] == '-') {
			r.pos++
		}
		if err := digits(); err != nil {
			return nil, err
		}
	}
	return jsonNumber(r.data[start:r.pos]), nil
}

// string reads a string whose opening quote is at pos.
func (r *jsonReader) string() (string, error) {
	r.pos++
	var b []byte
	for {
		if r.pos >= len(r.data) {
			return "", errJSONTruncated
		}
		c := r.data[r.pos]
		switch {
		case c == '"':
			r.pos++
			return string(b), nil
		case c < 0x20:
			return "", r.fail()
		case c == '\\':
			r.pos++
			if r.pos >= len(r.data) {
				return "", errJSONTruncated
			}
			switch e := r.data[r.pos]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				u, err := r.hex4()
				if err != nil {
					return "", err
				}
				if utf16.IsSurrogate(u) {
					// A pair only when a second \u escape follows that
					// completes it; else the first reads as U+FFFD and
					// the next escape is read on its own.
					lo, ok := r.peekHex4()
					if d := utf16.DecodeRune(u, lo); ok && d != utf8.RuneError {
						r.pos += 6
						u = d
					} else {
						u = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, u)
				continue
			default:
				return "", r.fail()
			}
			r.pos++
		case c < utf8.RuneSelf:
			b = append(b, c)
			r.pos++
		default:
			u, size := utf8.DecodeRune(r.data[r.pos:])
			b = utf8.AppendRune(b, u) // a bad byte is U+FFFD, size 1
			r.pos += size
		}
	}
}

// hex4 reads the four hex digits after \u, with pos on the u, and leaves
// pos after them.
func (r *jsonReader) hex4() (rune, error) {
	var u rune
	for range 4 {
		r.pos++
		if r.pos >= len(r.data) {
			return 0, errJSONTruncated
		}
		d := hexDigit(r.data[r.pos])
		if d < 0 {
			return 0, r.fail()
		}
		u = u<<4 | d
	}
	r.pos++
	return u, nil
}

// peekHex4 reads a \uXXXX escape at pos without moving.
func (r *jsonReader) peekHex4() (rune, bool) {
	if len(r.data)-r.pos < 6 || r.data[r.pos] != '\\' || r.data[r.pos+1] != 'u' {
		return 0, false
	}
	var u rune
	for _, c := range r.data[r.pos+2 : r.pos+6] {
		d := hexDigit(c)
		if d < 0 {
			return 0, false
		}
		u = u<<4 | d
	}
	return u, true
}

func hexDigit(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// isJSONNumber says whether s is a number as JSON writes one.
func isJSONNumber(s string) bool {
	if s == "" || s[0] != '-' && (s[0] < '0' || s[0] > '9') {
		return false
	}
	r := jsonReader{data: []byte(s)}
	_, err := r.number()
	return err == nil && r.pos == len(s)
}

// jsonAt walks objects by key; nil when a key is missing or a value on the
// way is not an object. Replies are read loosely, as Kubernetes clients
// read them: a field of another shape than expected is as good as absent.
// Out of line: inlined at its sixty call sites it cost 13 KB of binary.
//
//go:noinline
func jsonAt(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// jsonString is v when it is a string, else "".
func jsonString(v any) string {
	s, _ := v.(string)
	return s
}

// jsonInt is v when it is a whole number that fits, else 0.
func jsonInt(v any) int64 {
	n, _ := v.(jsonNumber)
	i, _ := strconv.ParseInt(string(n), 10, 64)
	return i
}

// jsonList is v when it is an array, else nil.
func jsonList(v any) []any {
	a, _ := v.([]any)
	return a
}

var errJSONUnwritable = errors.New("cannot be written as JSON")

// appendJSON writes v as JSON, object keys sorted and numbers as read, as
// encoding/json's Marshal does; strings as the log writes them.
func appendJSON(b []byte, v any) ([]byte, error) {
	var err error
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case string:
		return appendJSONString(b, v), nil
	case jsonNumber:
		return append(b, v...), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case float64:
		return appendJSONFloat(b, v)
	case yamlScalar:
		return v.appendJSON(b)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSON(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendJSONString(b, k), ':')
			if b, err = appendJSON(b, v[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return nil, errJSONUnwritable
}

// appendJSONFloat writes a float as encoding/json does: plain notation from
// 1e-6 to 1e21, else an exponent without a leading zero.
func appendJSONFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, errJSONUnwritable
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1]
		b = b[:n-1]
	}
	return b, nil
}
