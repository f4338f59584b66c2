package main

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// addressForms are, for every type whose address a password may reach, the
// schemes it may be written with ("" for none). A type that refuses user
// information (tcp, grpc, kafka, icmp, dns) is here too: its refusal must
// not quote the password either.
var addressForms = []struct {
	kind    string
	schemes []string
}{
	{"postgres", []string{"postgres://", "postgresql://", ""}},
	{"mysql", []string{"mysql://", ""}},
	{"redis", []string{"redis://", "rediss://", ""}},
	{"amqp", []string{"amqp://", "amqps://", ""}},
	{"mongodb", []string{"mongodb://", "mongodb+srv://", ""}},
	{"http", []string{"http://", "https://", ""}},
	{"tcp", []string{"tcp://", ""}},
	{"grpc", []string{"grpc://", "grpcs://", ""}},
	{"kafka", []string{""}},
	{"icmp", []string{"icmp://", ""}},
	{"dns", []string{""}},
	// A command line whose argument is a URL (curl http://app:pw@db/).
	{"exec", []string{"true http://", "true ", ""}},
}

// FuzzAddressSecret builds a target of every type from an address with a
// password in its user information (user:password@rest, or the user and
// the password apart by white space, as a shell may leave them), or, for
// postgres, in a keyword/value string, and fails when the password is in
// the address logs show or in a start-up error.
func FuzzAddressSecret(f *testing.F) {
	for i, form := range addressForms {
		for j := range form.schemes {
			f.Add(uint8(i), uint8(j), "app", ":", "Sekr1tK", "127.0.0.1:1/db")
			f.Add(uint8(i), uint8(j), "app", " ", "Sekr1tK", "127.0.0.1:1/db")
		}
	}
	f.Add(uint8(0), uint8(3), "app", " ", "Sekr1tK", "host=db")  // keyword/value
	f.Add(uint8(0), uint8(3), "app", " ", "Sek r1tK", "host=db") // keyword/value
	f.Add(uint8(2), uint8(2), "app", ":", "ab://cd", "db")
	f.Add(uint8(0), uint8(2), "=", " ", "00=000", "0")
	f.Add(uint8(7), uint8(2), "A", ":", "//0000", "0") // a URL: skipped
	// A ? in the user made & end the password as in a query.
	f.Add(uint8(0), uint8(3), "?", "0", "&00000", " ")
	f.Add(uint8(11), uint8(0), "0", ":", "00000 ", "0")       // two words: skipped
	f.Add(uint8(11), uint8(1), "A", ":", "//0000", "0")       // a URL: skipped
	f.Add(uint8(11), uint8(1), " A", ":", "//0000", "0")      // a URL as the command's word: skipped
	f.Add(uint8(11), uint8(0), " A", ":", "//0000", "0")      // the same after http://
	f.Add(uint8(1), uint8(0), "0", ":", "000000", "0# 00000") // %20 then 00000: skipped
	f.Add(uint8(1), uint8(0), "0/", " ", "?0000=", "0")       // a query: skipped
	// A :// after the password made it a scheme, quoted as unknown.
	f.Add(uint8(0), uint8(2), "app", ":", "Sekr1tK", "x://db")
	f.Add(uint8(2), uint8(2), "app", ":", "Sekr1tK", "x://db") // lower-cased
	// A / in the password made the DSN end before the @: a protocol.
	f.Add(uint8(1), uint8(1), "app", ":", "Sekr1tK", "x://db")
	f.Add(uint8(1), uint8(1), "app", " ", "Sekr1tK/", "db")
	f.Fuzz(func(t *testing.T, kind, form uint8, user, sep, password, rest string) {
		tt := addressForms[int(kind)%len(addressForms)]
		schemes := tt.schemes
		if tt.kind == "postgres" {
			schemes = append(schemes, "keyword")
		}
		scheme := schemes[int(form&0x7f)%len(schemes)]
		if form&0x80 != 0 {
			scheme = strings.ToUpper(scheme) // schemes are case-insensitive
		}
		var address, elsewhere string
		if scheme == "KEYWORD" || scheme == "keyword" {
			// libpq's keyword/value form: the password is one word's value.
			address = "user=" + user + " password=" + password + " " + rest
			elsewhere = "user=" + user + " password= " + rest
			if len(password) < 6 || strings.ContainsFunc(password, isSpaceOrQuote) || strings.ContainsAny(user, " \t\n\r\f\v'\\") ||
				strings.HasPrefix(password, "=") || strings.HasSuffix(password, "\\") {
				// Too short, or not one word: libpq ends the value at white space
				// (the words after it are other key=value pairs), reads quotes
				// and backslashes, and a user with white space in it makes the
				// password another word's value.
				return
			}
		} else {
			address = scheme + user + sep + password + "@" + rest
			elsewhere = scheme + user + sep + "@" + rest
			if len(password) < 6 || strings.Contains(password, "@") || strings.ContainsAny(user, "@:") ||
				strings.Contains(scheme, "://") && strings.ContainsAny(user, "/?#") ||
				sep == "" || (sep != ":" && strings.TrimSpace(sep) != "") ||
				sep != ":" && strings.TrimSpace(scheme+user) == "" ||
				isReference(address) || sep != ":" && keywordForm(user+sep+password) ||
				!strings.Contains(lastWord(scheme+user), "://") && sep == ":" && strings.HasPrefix(password, "//") && isURL(lastWord(scheme+user)+sep+password+"@"+rest) ||
				tt.kind == "exec" && (sep != ":" || strings.ContainsAny(password, " \t\n'\"\\")) {
				// Too short; not a password the user information can hold (an
				// @ ends it, a user with : or @ moves where it starts, and
				// in a URL one with / ? or # ends the authority before it:
				// mysql://0/ ?0000=@0 has the query 0000=@0); no
				// separator; white space before it with no user (trimmed,
				// it reads as the user); a reference (file:...) is a name;
				// libpq's key words (user=app sslmode=disable@db is a
				// connection string, whose password= alone is hidden); a
				// password that makes a URL of it (app://pw@db is a URL
				// whose user is pw, with no password); words of a command
				// line apart are arguments apart, not user information,
				// and quotes are no part of them (true http://u:00000 @h
				// passes http://u:00000, whose 00000 is a port, and @h).
				return
			}
		}
		// In any case: an error may lower-case what it quotes (a scheme).
		lower := strings.ToLower(password)
		// Also escaped: the fragment of mysql://u:000000@h# 00000 is shown as
		// %2000000, whose 000000 is no password.
		if strings.Contains(strings.ToLower(elsewhere+strconv.Quote(elsewhere)+url.PathEscape(elsewhere)+url.QueryEscape(elsewhere)), lower) {
			return // the rest of the address says it too
		}
		out := buildOutput(tt.kind, address)
		if !strings.Contains(strings.ToLower(out), lower) {
			return
		}
		filler := "\x01"
		if strings.Contains(password, filler) {
			filler = "\x02"
		}
		if other := strings.Repeat(filler, len(password)); strings.Contains(strings.ToLower(buildOutput(tt.kind, strings.Replace(address, password, other, 1))), lower) {
			return // our own words (a password such as "missing host")
		}
		t.Errorf("%s: the password %q of %q is in the output:\n%s", tt.kind, password, address, out)
	})
}

// buildOutput is what the build of a target of kind with address shows:
// the address logs name and every start-up error.
func buildOutput(kind, address string) string {
	s := &targetSpec{kind: kind, id: "x", address: address, timeout: time.Second}
	if settings := targetTypes[kind].settings; settings != nil {
		s.settings = settings() // the zero settings, as without properties
	}
	tg, errs := buildTarget(s)
	out := tg.address
	for _, err := range errs {
		out += "\n" + err.Error()
	}
	return out
}

// lastWord is the last word of s, "" when it has none: of a command line,
// the word that the user information of an address would continue.
func lastWord(s string) string {
	words := strings.Fields(s)
	if len(words) == 0 {
		return ""
	}
	return words[len(words)-1]
}

func isSpaceOrQuote(r rune) bool { return r == '\'' || r == '\\' || cSpace(byte(r)) && r < 0x80 }

// TestAddressPartOfPassword holds addresses whose start-up errors showed a
// part of the password (Sekr1tK of Sekr1tK/x), which FuzzAddressSecret,
// looking for the whole of it, does not see: every type gets each.
func TestAddressPartOfPassword(t *testing.T) {
	for _, address := range []string{
		"app:Sekr1tK/x@db",         // mysql: the DSN's last / ends the address before the @
		"app Sekr1tK/x@db",         // the same, split by the shell
		"app:Sekr1tK://x@db",       // postgres, redis: a scheme, quoted as unknown
		"app:Sekr1tK@x://db",       // the same after the @
		"mysql://app:Sekr1tK/x@db", // not a URL: the password holds a /
	} {
		for _, form := range addressForms {
			if out := buildOutput(form.kind, address); strings.Contains(strings.ToLower(out), "sekr1tk") {
				t.Errorf("%s: a part of the password of %q is in the output:\n%s", form.kind, address, out)
			}
		}
	}
}

func TestRedactWords(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"curl -sf http://app:Sekr1t@db/", "curl -sf http://app:xxxxx@db/"},
		{"curl  -u app\thttp://db/?token=Sekr1t", "curl  -u app\thttp://db/?token=xxxxx"},
		{"sh -c 'curl http://app:Sekr1t@db/'", "sh -c 'curl http://app:xxxxx@db/'"},
		{"psql --dbname=postgres://app:Sekr1t@db/x", "psql --dbname=postgres:xxxxx@db/x"},
		{"pg_isready -h db", "pg_isready -h db"},
	} {
		if got := redactWords(tc.in); got != tc.want {
			t.Errorf("redactWords(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// The address logs show for an exec target.
	s := &targetSpec{kind: "exec", id: "x", address: "true http://app:Sekr1t@db/", timeout: time.Second}
	if tg, errs := buildTarget(s); len(errs) > 0 || strings.Contains(tg.address, "Sekr1t") {
		t.Errorf("exec target: address %q, errors %v; want no Sekr1t and no error", tg.address, errs)
	}
}
