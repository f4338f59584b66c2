package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseINI(t *testing.T) {
	in := "\ufefftop = 1\n" +
		"  ; indented comment\n" +
		"# hash comment\n" +
		"\n" +
		"[ server ]\n" +
		"host=web\n" +
		"port : 8080\n" +
		"url = http://x:1/a=b\n" +
		"quoted = \"  spaced  \"\n" +
		"single = 'one'\n" +
		"mismatched = \"half'\n" +
		"empty =\n" +
		"[other]\n" +
		"k = v\n" +
		"[server]\n" +
		"host = web2\n"
	got, err := parseINI([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := iniFile{
		"": {"top": "1"},
		"server": {"host": "web2", "port": "8080", "url": "http://x:1/a=b", "quoted": "  spaced  ",
			"single": "one", "mismatched": "\"half'", "empty": ""},
		"other": {"k": "v"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseINI =\n%v\nwant\n%v", got, want)
	}
}

func TestParseINIErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"[open\n", "line 1: section header is missing its closing ]"},
		{"[]\n", "line 1: empty section name"},
		{"a=1\njust words\n", "line 2: want key = value"},
		{"= value\n", "line 1: missing key"},
	} {
		_, err := parseINI([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseINI(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestLookupINI(t *testing.T) {
	data := []byte("k = top\n[s]\nk = in-s\na.b = dotted\n")
	for _, tc := range []struct{ path, want string }{{"k", "top"}, {"s.k", "in-s"}, {"s.a.b", "dotted"}} {
		got, err := lookupINI(data, tc.path)
		if err != nil || got != tc.want {
			t.Errorf("lookupINI(%q) = %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
}

// Whatever parses can be looked up key by key.
func FuzzParseINI(f *testing.F) {
	for _, seed := range []string{"a=1\n[s]\nb: 2\n", "; c\n[x]\n", "[open\n", "k = \"v\"\n", "\ufeff[s]\nk=v"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ini, err := parseINI(data)
		if err != nil {
			return
		}
		for section, keys := range ini {
			for key, want := range keys {
				path := key
				if section != "" {
					path = section + "." + key
				}
				if strings.Contains(section, ".") || (section == "" && strings.Contains(key, ".")) {
					continue // not addressable by a dot path
				}
				got, err := lookupINI(data, path)
				if err != nil || got != want {
					t.Fatalf("lookupINI(%q) = %q, %v; parsed %q", path, got, err, want)
				}
			}
		}
	})
}
