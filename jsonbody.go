// JSON expectations of an http target: PATH=VALUE, PATH!=VALUE or PATH,
// checked against the response body with the json: resolver's dot paths.

package main

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jsonExpectation is one --http.<id>.json value, parsed at start-up.
type jsonExpectation struct {
	path   string   // as written, for reasons
	keys   []string // path cut into keys, escapes undone
	values []string // alternatives; nil: the path exists and is not null
	negate bool     // PATH!=VALUE
}

// parseJSONExpectation reads PATH=A|B, PATH!=A|B or PATH. The path ends at
// the first = (or !=) not escaped with a backslash.
func parseJSONExpectation(v string) (jsonExpectation, error) {
	var e jsonExpectation
	end, valueAt := len(v), -1
	bang := false // the character before is an unescaped !
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' {
			i, bang = i+1, false
			continue
		}
		if v[i] == '=' {
			end, valueAt = i, i+1
			if bang {
				end, e.negate = i-1, true
			}
			break
		}
		bang = v[i] == '!'
	}
	e.path = v[:end]
	if e.path == "" {
		return e, errors.New("no path: want PATH=VALUE, PATH!=VALUE or PATH, e.g. status=green|yellow")
	}
	var err error
	if e.keys, err = splitPath(e.path); err != nil {
		return e, err
	}
	if valueAt >= 0 {
		e.values = strings.Split(v[valueAt:], "|")
		if len(e.values) > 1 && slices.Contains(e.values, "") {
			return e, errorf("%s has an empty alternative (separate values with |, e.g. green|yellow)", quoteValue(v[valueAt:]))
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
	if e.values == nil {
		if v == nil {
			return errorf("%s is null, want a value", quoteValue(e.path))
		}
		return nil
	}
	text, scalar := jsonScalarText(v)
	if (scalar && slices.Contains(e.values, text)) != e.negate {
		return nil
	}
	want := make([]string, len(e.values))
	for i, a := range e.values {
		want[i] = quoteValue(a)
	}
	list := want[len(want)-1]
	if len(want) > 1 {
		list = strings.Join(want[:len(want)-1], ", ") + " or " + list
	}
	if e.negate {
		list = "anything but " + list
	}
	return errorf("%s is %s, want %s", quoteValue(e.path), foundJSON(v, secrets), list)
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
