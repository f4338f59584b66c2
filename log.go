// The logger: one line per event, in text or JSON, for every target.

package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// logger writes one line per event: "key=value" pairs (quoted where a value
// needs it) or, with --log-format=json, one JSON object. It is small on
// purpose: log/slog's handlers cost the binary more than everything here,
// and portpatrol logs only strings and integers.
type logger struct {
	out   *logOutput
	attrs []any // key, value pairs that every line of this logger carries
}

// logOutput is shared by a logger and those made from it by with, so that
// the lines of concurrent targets never interleave.
type logOutput struct {
	mu    sync.Mutex
	w     io.Writer
	json  bool
	level logLevel
}

type logLevel int

const (
	levelDebug logLevel = iota
	levelInfo
	levelWarn
	levelError
)

var levelNames = [...]string{"DEBUG", "INFO", "WARN", "ERROR"}

func newLogger(opts *options, w io.Writer) *logger {
	return &logger{out: &logOutput{w: w, json: opts.logFormat == "json", level: opts.logLevel}}
}

// with returns a logger whose lines also carry the given pairs.
func (l *logger) with(kv ...any) *logger {
	return &logger{l.out, append(slices.Clip(l.attrs), kv...)}
}

func (l *logger) enabled(level logLevel) bool { return level >= l.out.level }

func (l *logger) Debug(msg string, kv ...any) { l.log(levelDebug, msg, kv) }
func (l *logger) Info(msg string, kv ...any)  { l.log(levelInfo, msg, kv) }
func (l *logger) Warn(msg string, kv ...any)  { l.log(levelWarn, msg, kv) }
func (l *logger) Error(msg string, kv ...any) { l.log(levelError, msg, kv) }

func (l *logger) log(level logLevel, msg string, kv []any) {
	if !l.enabled(level) {
		return
	}
	o := l.out
	b := make([]byte, 0, 256)
	b = o.pair(b, "level", levelNames[level])
	b = o.pair(b, "msg", msg)
	for _, pairs := range [][]any{l.attrs, kv} {
		for i := 0; i+1 < len(pairs); i += 2 {
			key, ok := pairs[i].(string) // always, but fmt.Sprint would cost on every line
			if !ok {
				key = fmt.Sprint(pairs[i])
			}
			b = o.pair(b, key, pairs[i+1])
		}
	}
	// The time is read under the lock, so that lines written by targets at
	// the same moment never show their times out of order. It needs no
	// quoting in either format.
	line := make([]byte, 0, len(b)+48)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.json {
		line = append(time.Now().AppendFormat(append(line, `{"time":"`...), timeLayout), '"')
		line = append(append(line, b...), '}', '\n')
	} else {
		line = time.Now().AppendFormat(append(line, "time="...), timeLayout)
		line = append(append(line, b...), '\n')
	}
	o.w.Write(line)
}

// timeLayout is RFC 3339 with milliseconds, as slog writes it.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// pair appends a separator (replaced by '{' or dropped before the first
// pair), then key and value in the format of the output.
func (o *logOutput) pair(b []byte, key string, value any) []byte {
	n, isInt := value.(int)
	s, isString := value.(string)
	if !isInt && !isString {
		s = fmt.Sprint(value)
	}
	if o.json {
		b = appendJSONString(append(b, ','), key)
		b = append(b, ':')
		if isInt {
			return strconv.AppendInt(b, int64(n), 10)
		}
		return appendJSONString(b, s)
	}
	b = append(append(append(b, ' '), key...), '=')
	switch {
	case isInt:
		return strconv.AppendInt(b, int64(n), 10)
	case needsQuotes(s):
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// needsQuotes says whether a text value would be misread bare: empty, or
// with a space, '=', '"', a control character or invalid UTF-8 in it.
func needsQuotes(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if r == ' ' || r == '=' || r == '"' || r == utf8.RuneError || !strconv.IsPrint(r) {
			return true
		}
	}
	return false
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// and every character that is not printable is escaped, as the text format
// quotes it: C1 controls such as NEL and CSI, DEL, bidi overrides, and the
// line separators that split a line for many readers.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r > 0xffff && !strconv.IsPrint(r):
			r -= 0x10000 // as a UTF-16 surrogate pair
			b = appendJSONEscape(appendJSONEscape(b, 0xd800+r>>10), 0xdc00+r&0x3ff)
		case !strconv.IsPrint(r):
			b = appendJSONEscape(b, r)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

func appendJSONEscape(b []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', hex[r>>12&15], hex[r>>8&15], hex[r>>4&15], hex[r&15])
}
