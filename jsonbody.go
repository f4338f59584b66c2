// JSON expectations: PATH=VALUE, PATH!=VALUE, PATH>=N (and >, <=, <) or
// PATH, checked against a JSON document with the json: resolver's dot
// paths. One grammar for an http target's json property and a k8s target's
// for=field.

package main

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jsonExpectation is one expectation, parsed at start-up.
type jsonExpectation struct {
	path   string   // as written, for reasons
	keys   []string // path cut into keys, escapes undone
	op     string   // =, !=, >=, >, <=, <; "": the path exists and is not null
	values []string // alternatives of = and !=
	number float64  // the bound of >=, >, <= and <
}

// parseJSONExpectation reads PATH=A|B, PATH!=A|B, PATH>=N, PATH>N, PATH<=N,
// PATH<N or PATH. The path ends at the first =, !=, > or < not escaped
// with a backslash.
func parseJSONExpectation(v string) (jsonExpectation, error) {
	var e jsonExpectation
	end := len(v)
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' {
			i++
			continue
		}
		if strings.IndexByte("=<>", v[i]) >= 0 || strings.HasPrefix(v[i:], "!=") {
			end = i
			break
		}
	}
	e.path = v[:end]
	rest := v[end:]
	for _, op := range []string{"!=", ">=", "<=", "=", ">", "<"} {
		if strings.HasPrefix(rest, op) {
			e.op, rest = op, rest[len(op):]
			break
		}
	}
	if e.path == "" {
		return e, errors.New("no path: want PATH=VALUE, PATH!=VALUE or PATH, e.g. status=green|yellow")
	}
	var err error
	if e.keys, err = splitPath(e.path); err != nil {
		return e, err
	}
	switch e.op {
	case "=", "!=":
		e.values = strings.Split(rest, "|")
		if len(e.values) > 1 && slices.Contains(e.values, "") {
			return e, errorf("%s has an empty alternative (separate values with |, e.g. green|yellow)", quoteValue(rest))
		}
	case ">=", ">", "<=", "<":
		if e.number, err = strconv.ParseFloat(rest, 64); err != nil || !isJSONNumber(rest) {
			return e, errorf("%s%s needs a number after it, e.g. %s%s2", quoteValue(e.path), e.op, e.path, e.op)
		}
	}
	return e, nil
}

// check reports why doc does not meet the expectation, naming the path and
// what was found there, never more of the body.
func (e jsonExpectation) check(doc any, secrets hidden) error {
	v, err := walkPath(doc, e.keys)
	if err != nil {
		return err
	}
	var want string
	switch e.op {
	case "":
		if v == nil {
			return errorf("%s is null, want a value", quoteValue(e.path))
		}
		return nil
	case ">=", ">", "<=", "<":
		if n, ok := v.(jsonNumber); ok {
			f, _ := strconv.ParseFloat(string(n), 64)
			if e.op == ">=" && f >= e.number || e.op == ">" && f > e.number || e.op == "<=" && f <= e.number || e.op == "<" && f < e.number {
				return nil
			}
		}
		want = "a number " + e.op + " " + strconv.FormatFloat(e.number, 'g', -1, 64)
	default:
		text, scalar := jsonScalarText(v)
		if (scalar && slices.Contains(e.values, text)) != (e.op == "!=") {
			return nil
		}
		quoted := make([]string, len(e.values))
		for i, a := range e.values {
			quoted[i] = quoteValue(a)
		}
		want = quoted[len(quoted)-1]
		if len(quoted) > 1 {
			want = strings.Join(quoted[:len(quoted)-1], ", ") + " or " + want
		}
		if e.op == "!=" {
			want = "anything but " + want
		}
	}
	return errorf("%s is %s, want %s", quoteValue(e.path), foundJSON(v, secrets), want)
}

// jsonScalarText is the text a VALUE is compared with: a string's content,
// a number as written, true, false or null. Objects and arrays have none.
func jsonScalarText(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "null", true
	case string:
		return v, true
	case jsonNumber:
		return string(v), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// maxFoundShown is how much of a value found in a body a reason quotes.
const maxFoundShown = 64

// foundJSON shows what stands at a path: a scalar as written (a string
// quoted), an object or array by its kind alone. A long value is cut, so
// that a reason never carries a large part of the body, after the target's
// secrets are hidden, so that no cut leaves a part of one that conceal
// would no longer recognise.
func foundJSON(v any, secrets hidden) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	text, _ := jsonScalarText(v)
	text = secrets.conceal(text)
	cut := ""
	if len(text) > maxFoundShown {
		n := maxFoundShown
		for n > 0 && !utf8.RuneStart(text[n]) {
			n--
		}
		text, cut = text[:n], "…"
	}
	if _, ok := v.(string); ok {
		text = strconv.Quote(text)
	}
	return text + cut
}

// checkJSONBody tests every expectation against a body, reporting each that
// does not hold.
func checkJSONBody(body []byte, expectations []jsonExpectation, secrets hidden) error {
	doc, err := decodeJSON(body, "body")
	if err != nil {
		return errorf("the body is %v", err)
	}
	var reasons []string
	for _, e := range expectations {
		if err := e.check(doc, secrets); err != nil {
			reasons = append(reasons, err.Error())
		}
	}
	if len(reasons) > 0 {
		return errors.New(strings.Join(reasons, "; "))
	}
	return nil
}
