package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseArgsValid(t *testing.T) {
	opts, err := parseArgs([]string{
		"--default-interval=5s",
		"--http.web.address=http://example.com:80",
		"--http.web.method", "POST",
		"--http.web.header=Authorization=Bearer a=b",
		"--http.web.header", "Content-Type=application/json",
		"--http.web.expected-status-codes=200,301-302",
		"--http.web.skip-tls-verify",
		"--http.web.timeout=3s",
		"--tcp.db.address", "tcp://localhost:5432",
		"--tcp.db.name=postgres",
		"--tcp.db.interval=250ms",
		"--icmp.vm.address=vm.example",
		"--icmp.vm.read-timeout=2s",
	})
	if err != nil {
		t.Fatalf("parseArgs: %v", err)
	}
	if len(opts.targets) != 3 {
		t.Fatalf("got %d targets, want 3", len(opts.targets))
	}
	web, db, vm := opts.targets[0], opts.targets[1], opts.targets[2]

	if web.kind != "http" || web.name != "web" || httpOf(web).method != "POST" || !httpOf(web).skipVerify || web.timeout != 3*time.Second {
		t.Errorf("web = %+v", web)
	}
	if web.interval != 5*time.Second {
		t.Errorf("web interval = %v, want the --default-interval 5s even though it came first", web.interval)
	}
	wantHeaders := []header{{"Authorization", "Bearer a=b"}, {"Content-Type", "application/json"}}
	if len(httpOf(web).headers) != 2 || httpOf(web).headers[0] != wantHeaders[0] || httpOf(web).headers[1] != wantHeaders[1] {
		t.Errorf("headers = %q, want %q (split at the first =)", httpOf(web).headers, wantHeaders)
	}
	for code, want := range map[int]bool{200: true, 301: true, 302: true, 300: false, 303: false, 204: false} {
		if httpOf(web).expectedStatus.contains(code) != want {
			t.Errorf("expected-status-codes contains %d = %v, want %v", code, !want, want)
		}
	}
	if db.name != "postgres" || db.interval != 250*time.Millisecond || db.timeout != time.Second || db.address != "tcp://localhost:5432" {
		t.Errorf("db = %+v", db)
	}
	if db.settings != nil {
		t.Errorf("db has settings %+v: tcp has no own settings, and targets must not share values", db.settings)
	}
	if icmpOf(vm).readTimeout != 2*time.Second || icmpOf(vm).writeTimeout != time.Second {
		t.Errorf("vm timeouts = %v/%v, want 2s/1s", icmpOf(vm).readTimeout, icmpOf(vm).writeTimeout)
	}
}

func TestParseArgsDefaults(t *testing.T) {
	opts, err := parseArgs([]string{"--http.web.address=http://x"})
	if err != nil {
		t.Fatal(err)
	}
	s := opts.targets[0]
	if httpOf(s).method != "GET" || s.timeout != time.Second || s.interval != 2*time.Second || httpOf(s).skipVerify || httpOf(s).allowDuplicateHeaders {
		t.Errorf("defaults = %+v", s)
	}
	if !httpOf(s).expectedStatus.contains(200) || httpOf(s).expectedStatus.contains(204) {
		t.Errorf("default status codes = %v, want 200", httpOf(s).expectedStatus)
	}
	if opts.timeout != 0 || opts.logFormat != "text" || opts.logLevel != levelInfo {
		t.Errorf("global defaults = %+v", opts)
	}
}

func TestParseArgsBooleans(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--http.w.skip-tls-verify"}, true},
		{[]string{"--http.w.skip-tls-verify=true"}, true},
		{[]string{"--http.w.skip-tls-verify=false"}, false},
		{[]string{"--http.w.skip-tls-verify=FALSE"}, false},
		// A value may follow as the next argument: for a boolean, true or false.
		{[]string{"--http.w.skip-tls-verify", "false"}, false},
		{[]string{"--http.w.skip-tls-verify", "FALSE"}, false},
		{[]string{"--http.w.skip-tls-verify", "true"}, true},
		{[]string{"--http.w.skip-tls-verify", "True", "--tcp.x.address=h:1"}, true},
		{[]string{"--http.w.skip-tls-verify", "--tcp.x.address=h:1"}, true},
	} {
		opts, err := parseArgs(append([]string{"--http.w.address=http://x"}, tc.args...))
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got := httpOf(opts.targets[0]).skipVerify; got != tc.want {
			t.Errorf("%q: skip-tls-verify = %v, want %v", tc.args, got, tc.want)
		}
	}
	// Global booleans too; any other word after a boolean is still a stray argument.
	if opts, err := parseArgs([]string{"--help", "false", "--tcp.x.address=h:1"}); err != nil || opts.help {
		t.Errorf("--help false: help %v, error %v", opts.help, err)
	}
	if _, err := parseArgs([]string{"--tcp.x.address=h:1", "--help", "yes"}); err == nil || !strings.Contains(err.Error(), `unexpected argument "yes"`) {
		t.Errorf("--help yes: error %v, want yes reported as a stray argument", err)
	}
}

func TestParseArgsDuplicateHeadersAllowed(t *testing.T) {
	opts, err := parseArgs([]string{"--http.w.address=http://x", "--http.w.header=X-A=1", "--http.w.header=x-a=2", "--http.w.allow-duplicate-headers"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(httpOf(opts.targets[0]).headers); n != 2 {
		t.Errorf("got %d headers, want both values kept", n)
	}
}

func TestParseArgsCommand(t *testing.T) {
	opts, err := parseArgs([]string{"--tcp.db.address=h:1", "--", "app", "--tcp.not.a.flag", "-x"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(opts.command, " "); got != "app --tcp.not.a.flag -x" {
		t.Errorf("command = %q", got)
	}
}

// Every error names the flag and the bad value, and all are reported at once.
func TestParseArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"unknown type", []string{"--target.pg.address=x"}, []string{`--target.pg.address: unknown target type "target" (types are ` + strings.Join(typeNames(), ", ") + `)`}},
		{"unknown property", []string{"--http.web.adress=http://x"}, []string{`http targets have no property "adress" (did you mean address?)`}},
		{"property of another type", []string{"--tcp.db.address=h:1", "--tcp.db.method=GET"}, []string{`tcp targets have no property "method"`}},
		{"too few parts", []string{"--http.web=x"}, []string{"--http.web: target flags have the form --<type>.<identifier>.<property>"}},
		{"too many parts", []string{"--http.web.a.address=x"}, []string{"--http.web.a.address: target flags have the form"}},
		{"bad identifier", []string{"--tcp.d$b.address=h:1"}, []string{`identifier "d$b" may only contain letters, digits, - and _`}},
		{"missing address", []string{"--tcp.db.interval=1s"}, []string{"--tcp.db.address is missing"}},
		{"empty address", []string{"--tcp.db.address="}, []string{`--tcp.db.address="": must not be empty`}},
		{"bad duration", []string{"--tcp.db.address=h:1", "--tcp.db.interval=abc"}, []string{"--tcp.db.interval=abc: not a duration"}},
		{"zero duration", []string{"--tcp.db.address=h:1", "--tcp.db.timeout=0s"}, []string{"--tcp.db.timeout=0s: must be greater than zero"}},
		{"negative duration", []string{"--tcp.db.address=h:1", "--tcp.db.interval=-1s"}, []string{"--tcp.db.interval=-1s: must be greater than zero"}},
		{"bad default interval", []string{"--default-interval=soon", "--tcp.db.address=h:1"}, []string{"--default-interval=soon: not a duration"}},
		{"status not a number", []string{"--http.w.address=http://x", "--http.w.expected-status-codes=abc"}, []string{`--http.w.expected-status-codes=abc: "abc" is not a status code`}},
		{"status range backwards", []string{"--http.w.address=http://x", "--http.w.expected-status-codes=300-200"}, []string{"range 300-200 runs backwards"}},
		{"status too small", []string{"--http.w.address=http://x", "--http.w.expected-status-codes=99"}, []string{`"99" is not a status code`}},
		{"status too large", []string{"--http.w.address=http://x", "--http.w.expected-status-codes=600"}, []string{"600 is outside 100-599"}},
		{"status empty entry", []string{"--http.w.address=http://x", "--http.w.expected-status-codes=200,,"}, []string{"empty entry in the list"}},
		{"header without =", []string{"--http.w.address=http://x", "--http.w.header=Authorization"}, []string{"--http.w.header=…: want KEY=VALUE"}},
		{"header bad name", []string{"--http.w.address=http://x", "--http.w.header=Bad Name=x"}, []string{`header name "Bad Name" is not valid`}},
		{"duplicate header", []string{"--http.w.address=http://x", "--http.w.header=X-A=1", "--http.w.header=x-a=2"}, []string{`header "x-a" is given more than once; set --http.w.allow-duplicate-headers=true`}},
		{"bad method", []string{"--http.w.address=http://x", "--http.w.method=GE T"}, []string{`--http.w.method="GE T": not a valid HTTP method`}},
		{"bad bool", []string{"--http.w.address=http://x", "--http.w.skip-tls-verify=yes"}, []string{"--http.w.skip-tls-verify=yes: want true or false"}},
		{"bad regex", []string{"--http.w.address=http://x", "--http.w.expected-body-regex=a("}, []string{"--http.w.expected-body-regex=a(: not a valid regular expression"}},
		{"HEAD with a body regex", []string{"--http.w.address=http://x", "--http.w.method=HEAD", "--http.w.expected-body-regex=ok"},
			[]string{"--http.w.expected-body-regex with --http.w.method=HEAD can never match: a response to HEAD has no body"}},
		{"cert without key", []string{"--http.w.address=https://x", "--http.w.cert-file=c.pem"}, []string{"--http.w.cert-file and --http.w.key-file go together"}},
		{"repeated property", []string{"--tcp.db.address=h:1", "--tcp.db.address=h:2"}, []string{"--tcp.db.address is given more than once"}},
		{"repeated global", []string{"--tcp.db.address=h:1", "--timeout=1s", "--timeout=2s"}, []string{"--timeout is given more than once"}},
		{"positional", []string{"extra", "--tcp.db.address=h:1"}, []string{`unexpected argument "extra"`}},
		{"single dash", []string{"--tcp.db.address=h:1", "-timeout=1s"}, []string{`unknown flag -timeout=…: flags start with two dashes, e.g. --timeout=…`}},
		{"unknown global", []string{"--tcp.db.address=h:1", "--timout=1s"}, []string{"unknown flag --timout (did you mean --timeout?)"}},
		{"type without target", []string{"--tcp=x:1"}, []string{"unknown flag --tcp: a target flag names the target and a property, e.g. --tcp.db.address=…"}},
		{"type without target, value apart", []string{"--http", "http://x"}, []string{"unknown flag --http: a target flag names the target and a property, e.g. --http.db.address=…"}},
		{"missing value", []string{"--tcp.db.address"}, []string{"--tcp.db.address needs a value"}},
		{"value is a flag", []string{"--tcp.db.address", "--tcp.db.timeout=1s"}, []string{"--tcp.db.address needs a value"}},
		{"no targets", nil, []string{"no targets"}},
		{"name taken by an identifier", []string{"--tcp.a.address=h:1", "--tcp.b.address=h:2", "--tcp.b.name=a"},
			[]string{"--tcp.b.name=a: --tcp.a is named a too; give each target of a type its own name"}},
		{"name taking an identifier", []string{"--tcp.a.address=h:1", "--tcp.a.name=b", "--tcp.b.address=h:2"},
			[]string{"--tcp.a.name=b: --tcp.b is named b too"}},
		{"one name twice", []string{"--http.a.address=http://h/", "--http.a.name=web", "--http.b.address=http://h/", "--http.b.name=web"},
			[]string{"--http.b.name=web: --http.a is named web too"}},
		{"empty command", []string{"--tcp.db.address=h:1", "--"}, []string{"nothing after --"}},
		{"bad log format", []string{"--tcp.db.address=h:1", "--log-format=xml"}, []string{"--log-format=xml: want text or json"}},
		{"bad log level", []string{"--tcp.db.address=h:1", "--log-level=loud"}, []string{"--log-level=loud: want debug, info, warn or error"}},
		{"negative timeout", []string{"--tcp.db.address=h:1", "--timeout=-1s"}, []string{"--timeout=-1s: must not be negative"}},
		{"all at once",
			[]string{"--target.pg.address=x", "--tcp.db.interval=0s", "--http.w.address=http://x", "--http.w.expected-status-codes=99"},
			[]string{"unknown target type", "--tcp.db.interval=0s", "--tcp.db.address is missing", `"99" is not a status code`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseArgs(tc.args)
			if err == nil {
				t.Fatalf("parseArgs(%q) succeeded, want an error containing %q", tc.args, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseArgsNeverEchoesSecrets(t *testing.T) {
	_, err := parseArgs([]string{"--http.w.address=http://x", "--http.w.header=Bad Name=hunter2", "--http.w.header=tokenhunter2", "--http.w.body"})
	if err == nil {
		t.Fatal("want errors")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error echoes a header value:\n%s", err)
	}
}

func TestParseStatusCodes(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"200", "200"},
		{"200,204", "200 or 204"},
		{" 200 , 301-302 ", "200 or 301-302"},
		{"200-299,404", "200-299 or 404"},
		{"100-599", "100-599"},
	} {
		got, err := parseStatusCodes(tc.in)
		if err != nil {
			t.Errorf("parseStatusCodes(%q): %v", tc.in, err)
			continue
		}
		if got.String() != tc.want {
			t.Errorf("parseStatusCodes(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", ",", "2OO", "200-", "-200", "1000", "0200", "+200", "200-300-400", "abc"} {
		if _, err := parseStatusCodes(bad); err == nil {
			t.Errorf("parseStatusCodes(%q) succeeded, want an error", bad)
		}
	}
}

func TestUsageListsEverything(t *testing.T) {
	help := usage()
	for _, g := range globalFlags {
		if !strings.Contains(help, "--"+g.name) {
			t.Errorf("help lacks --%s", g.name)
		}
	}
	for kind := range targetTypes {
		for _, p := range propertiesOf(kind) {
			// The line in the type's own section: types differ in defaults.
			line, section := "", ""
			for _, l := range strings.Split(help, "\n") {
				if name, _, ok := strings.Cut(l, " (--"); ok && !strings.HasPrefix(l, " ") {
					section = name
				}
				if (section == kind || section == "Every target") && (strings.HasPrefix(strings.TrimSpace(l), p.name+" ") || strings.TrimSpace(l) == p.name) {
					line = l
				}
			}
			if line == "" {
				t.Errorf("help lacks %s property %s", kind, p.name)
			} else if p.def != "" && !strings.Contains(line, "(default "+p.def+")") {
				t.Errorf("help line %q lacks the default %s", line, p.def)
			}
		}
	}
	for _, code := range []string{"0 ", "1 ", "2 ", "126", "127", "129, 130, 143"} {
		if !strings.Contains(help, "  "+code) && !strings.Contains(help, code+":") {
			t.Errorf("help lacks exit code %s", code)
		}
	}
}

// Every default in the property table must parse (finishTarget panics
// otherwise), and every type's properties fit the bits of targetSpec.given.
func TestDefaultsParse(t *testing.T) {
	for kind := range targetTypes {
		for _, p := range propertiesOf(kind) {
			if p.def == "" {
				continue
			}
			s := &targetSpec{kind: kind, id: "x"}
			if tt := targetTypes[kind]; tt.settings != nil {
				s.settings = tt.settings()
			}
			if err := p.set(s, p.def); err != nil {
				t.Errorf("%s.%s default %q: %v", kind, p.name, p.def, err)
			}
		}
		if n := len(propertiesOf(kind)); n > 64 {
			t.Errorf("%s has %d properties, more than targetSpec.given holds", kind, n)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"adress", "address", 1}, {"timout", "timeout", 1}, {"abc", "", 3}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// Any argument list gives either options or an error, never a panic; a
// parsed configuration is complete.
func FuzzParseArgs(f *testing.F) {
	for _, seed := range []string{
		"--tcp.db.address=localhost:5432",
		"--http.web.address=http://x\x00--http.web.header=A=b\x00--http.web.expected-status-codes=200,301-302",
		"--icmp.vm.address\x00host\x00--timeout\x005s\x00--\x00sh",
		"--http.w.skip-tls-verify\x00--http.w.address=https://x\x00--http.w.cert-file=a",
		"--target.pg.address=x\x00-h",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		opts, err := parseArgs(strings.Split(joined, "\x00"))
		if err != nil {
			return
		}
		if !opts.help && !opts.version && len(opts.targets) == 0 {
			t.Fatalf("%q parsed without targets", joined)
		}
		for _, s := range opts.targets {
			if s.address == "" || s.name == "" || s.interval <= 0 {
				t.Fatalf("%q gave an incomplete target %+v", joined, s)
			}
		}
	})
}

// A list that parses describes itself in a form that parses to the same set.
func FuzzParseStatusCodes(f *testing.F) {
	for _, seed := range []string{"200", "200,301-302", "100-599", "200,,", "300-200", "99", " 204 "} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, list string) {
		codes, err := parseStatusCodes(list)
		if err != nil {
			return
		}
		again, err := parseStatusCodes(strings.NewReplacer(" or ", ",", ", ", ",").Replace(codes.String()))
		if err != nil {
			t.Fatalf("%q → %q does not parse: %v", list, codes, err)
		}
		for code := 100; code <= 599; code++ {
			if codes.contains(code) != again.contains(code) {
				t.Fatalf("%q and its description %q disagree on %d", list, codes, code)
			}
		}
	})
}

// A mistyped name gets a suggestion: the same name in lower case, a declared
// alias, the names it begins, the names it is a whole part of, or the
// closest by edit distance; a type's address parameter, where it goes.
func TestParseArgsSuggestions(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"--http.w.url=http://x", `no property "url" (did you mean address?)`},
		{"--tcp.w.host=h:1", `no property "host" (did you mean address?)`},
		{"--http.w.ADDRESS=http://x", `no property "ADDRESS" (did you mean address?)`},
		{"--HTTP.w.address=http://x", `unknown target type "HTTP" (types are ` + strings.Join(typeNames(), ", ") + `) (did you mean http?)`},
		{"--http.w.insecure", `no property "insecure" (did you mean skip-tls-verify?)`},
		{"--http.w.status-codes=200", `no property "status-codes" (did you mean expected-status-codes?)`},
		{"--http.w.expected-status=200", `no property "expected-status" (did you mean expected-status-codes?)`},
		{"--icmp.w.timeout=1s", `no property "timeout" (did you mean read-timeout or write-timeout?)`},
		{"--http.w.file=x", `(did you mean ca-file, cert-file or key-file?)`},
		{"--interval=5s", "unknown flag --interval (did you mean --default-interval or --default-max-interval?)"},
		{"--TIMEOUT=5s", "unknown flag --TIMEOUT (did you mean --timeout?)"},
		{"-v", "unknown flag -v: flags start with two dashes (did you mean --version?)"},
		{"--http.w.adress=x", `no property "adress" (did you mean address?)`},
		// A declared alias wins over a name that holds it as a part
		// (allow-duplicate-headers).
		{"--http.w.headers=Accept=x", `no property "headers" (did you mean header?)`},
		{"--http.w.Headers=Accept=x", `no property "Headers" (did you mean header?)`},
		// A name it begins, before a like one by edit distance (name).
		{"--postgres.w.pass=x", `no property "pass" (did you mean password?)`},
		{"--mysql.w.pass=x", `no property "pass" (did you mean password?)`},
		// The names people try for a property, as other tools spell them.
		{"--postgres.w.dbname=shop", `no property "dbname" (did you mean database?)`},
		{"--k8s.w.ns=shop", `no property "ns" (did you mean namespace?)`},
		{"--k8s.w.labels=app=x", `no property "labels" (did you mean selector?)`},
		{"--exec.w.cmd=true", `no property "cmd" (did you mean address?)`},
		// A parameter of the address is told where it goes, not offered a
		// property of the opposite meaning (skip-tls-verify).
		{"--mysql.w.tls=true", `mysql targets have no property "tls": it is a parameter of the address (?tls=true in a DSN, ?ssl-mode=REQUIRED in a URL)`},
		{"--postgres.w.sslmode=require", `postgres targets have no property "sslmode": it is a parameter of the address (?sslmode=require in a URL, sslmode=require in a keyword/value string)`},
		{"--mysql.w.ssl-mode=REQUIRED", `no property "ssl-mode": it is a parameter of the address (?ssl-mode=REQUIRED in a URL, ?tls=true in a DSN)`},
		{"--mysql.w.sslmode=require", `no property "sslmode": it is a parameter of the address`},
		{"--mysql.w.ssl-ca=/ca.pem", `no property "ssl-ca": it is a parameter of the address (?ssl-ca=/path in a URL, or the ca-file property)`},
	} {
		_, err := parseArgs([]string{tc.arg})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error\n%v\nwant %q", tc.arg, err, tc.want)
		}
	}
	// Suggested only: a name in another case is never accepted.
	if _, err := parseArgs([]string{"--TCP.db.ADDRESS=h:1"}); err == nil {
		t.Error("--TCP.db.ADDRESS was accepted")
	}
}

// One mistake gives one message, not a second one that follows from it.
func TestParseArgsOneMessagePerMistake(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		want   string
		unwant string
	}{
		{[]string{"--http.w.adress=http://x"}, "did you mean address", "no targets"},
		{[]string{"--tcp.w.address=h:1", "--tcp.x.adress", "h:2"}, "did you mean address", `unexpected argument`},
		{[]string{"-tcp.w.address=h:1"}, "unknown flag -tcp.w.address=…", "no targets"},
		{[]string{"tcp.w.address=h:1"}, "unexpected argument tcp.w.address=…", "no targets"},
		{[]string{"--tcp.db.address"}, "--tcp.db.address needs a value", "is missing"},
		{[]string{"--tcp.db.address", "--tcp.db.timeout=1s"}, "--tcp.db.address needs a value", "is missing"},
		{[]string{"--tcp.db.address=h:1", "--interval", "5s"}, "unknown flag --interval", "unexpected argument"},
		{[]string{"--tcp.db.address=h:1", "-interval", "5s"}, "unknown flag -interval", "unexpected argument"},
	} {
		_, err := parseArgs(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), tc.unwant) {
			t.Errorf("%q: error\n%v\nwant %q and no %q", tc.args, err, tc.want, tc.unwant)
		}
	}
}

// Target flags after -- belong to the command; with no target before it,
// the error says where they went.
func TestParseArgsTargetFlagsAfterDashDash(t *testing.T) {
	_, err := parseArgs([]string{"--", "app", "--tcp.db.address=secret-host:1"})
	want := "no targets: target flags must come before -- (--tcp.db.address is after it, in the command)"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "secret-host") {
		t.Errorf("error\n%v\nwant %q, without the value", err, want)
	}
	_, err = parseArgs([]string{"--", "app", "--port=1"})
	if err == nil || strings.Contains(err.Error(), "must come before") {
		t.Errorf("a command's own flags are no target flags: %v", err)
	}
}

// A rejected flag-looking argument shows its name, never its value, and so
// does its suggestion; so does a stray word after a secret value.
func TestParseArgsNeverEchoesRejectedValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-http.a.body=SECRET"}, "unknown flag -http.a.body=…: flags start with two dashes, e.g. --http.a.body=…"},
		{[]string{"-http.a.body", "SECRET"}, "unknown flag -http.a.body: flags start with two dashes, e.g. --http.a.body"},
		{[]string{"http.a.header=Authorization=SECRET"}, "unexpected argument http.a.header=…: flags start with two dashes, e.g. --http.a.header=…"},
		{[]string{"http.a.body", "SECRET"}, "unexpected argument http.a.body: flags start with two dashes, e.g. --http.a.body"},
		{[]string{"timeout=SECRET"}, "unexpected argument timeout=…: flags start with two dashes, e.g. --timeout=…"},
		{[]string{"--http.a.bdy=SECRET"}, `--http.a.bdy: http targets have no property "bdy" (did you mean body?)`},
		{[]string{"--http.a.bdy", "SECRET"}, `no property "bdy"`},
		{[]string{"--tcp.x.address=h:1", "--tcp.x.passwrd", "SECRET"}, `no property "passwrd"`},
		{[]string{"--pasword=SECRET", "--tcp.x.address=h:1"}, `unknown flag --pasword`},
		{[]string{"--http.a.address=http://x", "--http.a.header", "Authorization=Bearer", "SECRET"},
			"unexpected argument after the value of --http.a.header, not shown as it may be part of that value"},
		{[]string{"--http.a.address=http://x", "--http.a.body=Bearer", "SECRET"}, "unexpected argument after the value of --http.a.body"},
		// An address split by the shell inside its password.
		{[]string{"--postgres.a.address=postgresql://u:S3", "SECRET@h/x"}, "unexpected argument after the value of --postgres.a.address"},
	} {
		_, err := parseArgs(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error\n%v\nwant %q", tc.args, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%q: error echoes the value:\n%v", tc.args, err)
		}
	}
	// A stray word elsewhere is still shown: it helps, and holds no secret.
	if _, err := parseArgs([]string{"--log-level=info", "extra", "--tcp.x.address=h:1"}); err == nil || !strings.Contains(err.Error(), `unexpected argument "extra"`) {
		t.Errorf("got %v", err)
	}
}

// Every value in an error goes through quoteValue: a line break cannot
// start a forged line, and an escape code reaches no terminal.
func TestParseArgsQuotesValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tcp.a.address=h:1", "--tcp.a.interval=1s\nportpatrol: forged"}, `--tcp.a.interval="1s\nportpatrol: forged": not a duration`},
		{[]string{"--tcp.a.address=h:1", "--timeout=\x1b[31mred"}, `--timeout="\x1b[31mred": not a duration`},
		{[]string{"--tcp.a.address=h:1", "--log-level=a b"}, `--log-level="a b": want debug`},
		{[]string{"--tcp.a\x1b]0;x.address=h:1"}, `"--tcp.a\x1b]0;x.address": identifier "a\x1b]0;x"`},
		{[]string{"--tcp.a.address=h:1", "--tcp.a.naem\n=x"}, `"--tcp.a.naem\n": tcp targets have no property "naem\n"`},
		{[]string{"--tcp.a.address=h:1", "-x\ny=1"}, `unknown flag "-x\ny"=…`},
		{[]string{"--tcp.a.address=h:1", "--x\ny"}, `unknown flag "--x\ny"`},
		{[]string{"--http.a.address=http://x", "--http.a.expected-body-regex=a(\n"}, `not a valid regular expression: missing closing ): "a(\n"`},
		{[]string{"--http.a.address=http://x", "--http.a.header=X=1", "--http.a.header=Bad\x1bName=v"}, `header name "Bad\x1bName" is not valid`},
		{[]string{"--tcp.a.address=h:1", "--tcp.a.interval=plain"}, `--tcp.a.interval=plain: not a duration`},
	} {
		_, err := parseArgs(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error\n%v\nwant %s", tc.args, err, tc.want)
			continue
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if strings.HasPrefix(line, "portpatrol:") || strings.ContainsAny(line, "\x1b\r") {
				t.Errorf("%q: a value broke out of its quotes: %q", tc.args, line)
			}
		}
	}
}

func TestQuoteValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"http://u:xxxxx@h/p?q=1", "http://u:xxxxx@h/p?q=1"},
		{"bücher.test", "bücher.test"},
		{"", `""`},
		{"a b", `"a b"`},
		{`say "hi"`, `"say \"hi\""`},
		{`back\slash`, `"back\\slash"`},
		{"line\nbreak", `"line\nbreak"`},
		{"\x1b[2J", `"\x1b[2J"`},
		{"\u202eevil", `"\u202eevil"`},
		{"\xff", `"\xff"`},
		// Cut at 200 bytes, where a character starts: é is two bytes.
		{strings.Repeat("a", 200), strings.Repeat("a", 200)},
		{strings.Repeat("a", 201), strings.Repeat("a", 200) + "… (201 bytes)"},
		{strings.Repeat("a", 199) + "é", strings.Repeat("a", 199) + "… (201 bytes)"},
		{strings.Repeat(" ", 300), `"` + strings.Repeat(" ", 200) + `"… (300 bytes)`},
	} {
		if got := quoteValue(tc.in); got != tc.want {
			t.Errorf("quoteValue(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// A long value is cut in every error that quotes it: a 120 KB address
// does not make a 120 KB line.
func TestLongValuesAreCut(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 120_000)
	for _, args := range [][]string{
		{"--tcp.a.address=" + long},
		{"--postgres.a.address=" + long + "://h"},
		{"--redis.a.address=" + long + "://h"},
		{"--mysql.a.address=" + long + "(h:1)/"},
		{"--http.a.address=http://" + long + "/"},
		{"--http.a.address=http://h/", "--http.a.unix-socket=" + long},
		{"--http.a.address=http://h/", "--http.a.header=" + long + "\x01=1"},
		{"--dns.a.address=" + long},
		{"--dns.a.address=x.test", "--dns.a.record-type=A", "--dns.a.expected=" + long},
		{"--tcp.a.address=h:1", "--tcp.a." + long + "=1"},
		{long, "--tcp.a.address=h:1"},
		{"--tcp.a.address=h:1", "--", long},
	} {
		o := runPortpatrol(t, nil, args...)
		if o.code == 0 || !strings.Contains(o.stderr, "… (1200") {
			t.Errorf("%.40q: exit %d, want a value cut with its length:\n%.2000s", args, o.code, o.stderr)
		}
		for _, line := range strings.Split(o.stderr, "\n") {
			if len(line) > 1000 {
				t.Errorf("%.40q: a line of %d bytes:\n%.2000s", args, len(line), line)
			}
		}
	}
}

// Intervals have a floor: below it a failing target busy-loops.
func TestIntervalFloor(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tcp.a.address=h:1", "--default-interval=1ns"}, "--default-interval=1ns: below the minimum of 10ms"},
		{[]string{"--tcp.a.address=h:1", "--default-interval=9ms"}, "--default-interval=9ms: below the minimum of 10ms"},
		{[]string{"--tcp.a.address=h:1", "--tcp.a.interval=999us"}, "--tcp.a.interval=999us: below the minimum of 10ms"},
		{[]string{"--icmp.a.address=h", "--icmp.a.interval=1ns"}, "--icmp.a.interval=1ns: below the minimum of 10ms"},
	} {
		if _, err := parseArgs(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
		}
	}
	opts, err := parseArgs([]string{"--default-interval=10ms", "--tcp.a.address=h:1", "--tcp.b.address=h:1", "--tcp.b.interval=10ms"})
	if err != nil || opts.targets[0].interval != minInterval || opts.targets[1].interval != minInterval {
		t.Errorf("10ms must be accepted: %v", err)
	}
	if minInterval != 10*time.Millisecond || !strings.Contains(usage(), "at least 10ms") {
		t.Errorf("--help must state the floor of %v", minInterval)
	}
}

func TestDurations(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"--timeout=99999999h", "--timeout=99999999h: too large: at most 2562047h"},
		{"--timeout=9223372036854775808ns", "too large"},
		{"--default-interval=99999999h", "--default-interval=99999999h: too large"},
		{"--timeout=5 s", "not a duration"},
		{"--timeout=5", "not a duration"},
		{"--timeout=1.2.3s", "not a duration"},
		{"--timeout=h", "not a duration"},
		{"--timeout=5sec", "not a duration"},
	} {
		if _, err := parseArgs([]string{"--tcp.a.address=h:1", tc.arg}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.arg, err, tc.want)
		}
	}
	opts, err := parseArgs([]string{"--tcp.a.address=h:1", "--timeout=2562047h"})
	if err != nil || opts.timeout != 2562047*time.Hour {
		t.Errorf("the largest whole hour must parse: %v", err)
	}
}

func TestLogFormatAnyCase(t *testing.T) {
	for _, v := range []string{"JSON", "Json", "TEXT"} {
		opts, err := parseArgs([]string{"--tcp.a.address=h:1", "--log-format=" + v})
		if err != nil || opts.logFormat != strings.ToLower(v) {
			t.Errorf("--log-format=%s: %v, format %q", v, err, opts.logFormat)
		}
	}
}

// Types tell targets apart in logs as well as names: db may be a tcp and an
// http target at once.
func TestParseArgsOneNameAcrossTypes(t *testing.T) {
	opts, err := parseArgs([]string{"--tcp.db.address=h:1", "--http.db.address=http://h/", "--tcp.x.address=h:2", "--http.y.name=x", "--http.y.address=http://h/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.targets) != 4 {
		t.Errorf("%d targets, want 4", len(opts.targets))
	}
}

// --tcp=HOST:PORT is one mistake: not also "no targets", and the value,
// which may hold a password, is not shown.
func TestTypeWithoutTargetIsOneProblem(t *testing.T) {
	_, err := parseArgs([]string{"--postgres=postgres://u:S3CRET@db/app"})
	if err == nil || strings.Count(err.Error(), "\n") != 0 || strings.Contains(err.Error(), "S3CRET") {
		t.Errorf("got %v, want one problem that shows no value", err)
	}
}
