package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// standardJSON is what encoding/json reads in data, numbers as written; the
// reference the hand-written reader is held to.
func standardJSON(data []byte) (any, bool) {
	if !json.Valid(data) {
		return nil, false
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil, false
	}
	return withOurNumbers(v), true
}

func withOurNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		return jsonNumber(v)
	case []any:
		for i := range v {
			v[i] = withOurNumbers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = withOurNumbers(v[k])
		}
	}
	return v
}

var jsonSamples = []string{
	`{"a":[1,-2.5e+3,0,true,false,null,"x"],"b":{"c":{}},"d":[]}`,
	`"\u00e9\ud83d\ude00\ud800x\udc00\u0041\"\\\/\b\f\n\r\t"`,
	"\"\xff\xfe ok \xe2\x82\"", `{"k":1,"k":2}`, `  12  `, `-0.0E-0`, `1e5`,
	`01`, `-`, `1.`, `1e`, `.5`, `+1`, `[1,]`, `{"a":1,}`, `{,}`, `[,]`, `{"a" 1}`, `{1:2}`,
	`tru`, `trux`, `nul`, `"abc`, "\"a\x01\"", `"\x"`, `"\u12"`, `"\u12g4"`, `{} x`, `{}}`,
	`[[[[[[[[[[]]]]]]]]]]`, ``, `   `, `"\ud800\u0041"`, `"\udc00\ud800"`,
}

// The reader accepts exactly what encoding/json calls valid, and reads the
// same values from it.
func TestParseJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range jsonSamples {
		checkAgainstStandard(t, []byte(s))
	}
	deep := strings.Repeat("[", jsonMaxDepth+1) + strings.Repeat("]", jsonMaxDepth+1)
	if _, err := parseJSON([]byte(deep)); err == nil {
		t.Errorf("%d levels of nesting accepted", jsonMaxDepth+1)
	}
}

func checkAgainstStandard(t *testing.T, data []byte) {
	want, valid := standardJSON(data)
	got, err := parseJSON(data)
	if valid != (err == nil) {
		t.Fatalf("%q: encoding/json valid %v, ours err %v", data, valid, err)
	}
	if valid && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: got %#v, want %#v", data, got, want)
	}
}

func TestParseJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		data string
		want error
	}{
		{``, errJSONEmpty},
		{" \n", errJSONEmpty},
		{`{"a":`, errJSONTruncated},
		{`"\u12`, errJSONTruncated},
		{`1 2`, errJSONMore},
		{`<html>`, jsonSyntaxError{1}},
		{"[1,\n ]", jsonSyntaxError{6}},
		{`"a` + "\x01" + `"`, jsonSyntaxError{3}},
	} {
		if _, err := parseJSON([]byte(tc.data)); err != tc.want {
			t.Errorf("%q: got %v, want %v", tc.data, err, tc.want)
		}
	}
}

// What appendJSON writes reads back as the same value.
func TestAppendJSONRoundTrip(t *testing.T) {
	for _, s := range jsonSamples {
		v, err := parseJSON([]byte(s))
		if err != nil {
			continue
		}
		b, err := appendJSON(nil, v)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if back, err := parseJSON(b); err != nil || !reflect.DeepEqual(back, v) {
			t.Errorf("%q written as %s reads back as %#v, %v", s, b, back, err)
		}
	}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{map[string]any{"b": 1, "a": []any{1.5, 1e21, 1e-7, int64(-3), uint64(7)}}, `{"a":[1.5,1e+21,1e-7,-3,7],"b":1}`},
		{map[string]any{}, `{}`},
	} {
		if b, err := appendJSON(nil, tc.v); err != nil || string(b) != tc.want {
			t.Errorf("appendJSON(%v) = %s, %v; want %s", tc.v, b, err, tc.want)
		}
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range jsonSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgainstStandard(t, data)
	})
}
