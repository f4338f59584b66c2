package main

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// options is everything the command line asked for.
type options struct {
	defaultInterval time.Duration
	timeout         time.Duration // overall deadline; 0 waits forever
	logFormat       string
	logLevel        slog.Level
	help            bool
	version         bool
	targets         []*targetSpec
	command         []string // what to exec once every target is ready
}

// targetSpec is one target as written on the command line. address, header
// values and body may still be references (env:, file:, ...) for resolve.go.
type targetSpec struct {
	kind     string // http, icmp or tcp
	id       string
	name     string
	address  string
	interval time.Duration

	timeout time.Duration // tcp and http: per attempt

	method                string
	headers               []header
	allowDuplicateHeaders bool
	expectedStatus        statusCodes
	skipTLSVerify         bool
	caFile                string
	certFile              string
	keyFile               string
	bodyRegex             *regexp.Regexp
	body                  string

	readTimeout  time.Duration
	writeTimeout time.Duration

	given uint32 // bit i: propertiesOf(kind)[i] was on the command line
}

type header struct {
	name, value string
}

// flag is the spelling used in messages: --http.web.address.
func (s *targetSpec) flag(prop string) string {
	return "--" + s.kind + "." + s.id + "." + prop
}

// isGiven and markGiven track which properties the command line set, as
// bits rather than a map: a thousand targets should cost little.
func (s *targetSpec) isGiven(name string) bool { return s.given&s.bit(name) != 0 }
func (s *targetSpec) markGiven(name string)    { s.given |= s.bit(name) }

func (s *targetSpec) bit(name string) uint32 {
	for i, p := range propertiesOf(s.kind) {
		if p.name == name {
			return 1 << i
		}
	}
	panic("no property " + name) // callers pass names from the property table
}

// property is one --<type>.<id>.<property> setting: how its value is parsed,
// its default, and its line in the help text.
type property struct {
	name       string
	arg        string // placeholder shown in help; "" for booleans
	def        string // applied through set when not given; "" means none
	help       string
	repeatable bool
	set        func(s *targetSpec, v string) error
}

func (p property) boolean() bool { return p.arg == "" }

var commonProperties = []property{
	{name: "name", arg: "STRING", help: "name shown in logs (default: the identifier)",
		set: func(s *targetSpec, v string) error {
			if strings.TrimSpace(v) == "" {
				return errors.New("must not be empty")
			}
			s.name = v
			return nil
		}},
	{name: "address", arg: "ADDRESS", help: "what to check; a literal or a reference (env:, file:, json:, yaml:, ini:)",
		set: func(s *targetSpec, v string) error {
			if strings.TrimSpace(v) == "" {
				return errors.New("must not be empty")
			}
			s.address = v
			return nil
		}},
	{name: "interval", arg: "DURATION", help: "pause after a failed attempt (default: --default-interval)",
		set: func(s *targetSpec, v string) (err error) { s.interval, err = parsePositiveDuration(v); return }},
}

// targetTypes lists every property each type accepts, the common ones first.
var targetTypes = map[string][]property{
	"tcp": withCommon([]property{
		{name: "timeout", arg: "DURATION", def: "1s", help: "how long one connection attempt may take",
			set: func(s *targetSpec, v string) (err error) { s.timeout, err = parsePositiveDuration(v); return }},
	}),
	"http": withCommon([]property{
		{name: "method", arg: "METHOD", def: "GET", help: "request method",
			set: func(s *targetSpec, v string) error {
				if !isToken(v) {
					return errors.New("not a valid HTTP method (letters like GET, HEAD, POST)")
				}
				s.method = v
				return nil
			}},
		{name: "header", arg: "KEY=VALUE", repeatable: true, help: "request header, repeatable; VALUE may be a reference",
			set: func(s *targetSpec, v string) error {
				name, value, ok := strings.Cut(v, "=")
				name = strings.TrimSpace(name)
				if !ok {
					return errors.New("want KEY=VALUE, e.g. Authorization=env:TOKEN")
				}
				if !isToken(name) {
					return fmt.Errorf("header name %q is not valid (letters, digits and !#$%%&'*+-.^_`|~)", name)
				}
				s.headers = append(s.headers, header{name, strings.TrimSpace(value)})
				return nil
			}},
		{name: "allow-duplicate-headers", def: "false", help: "send every value of a header given more than once",
			set: func(s *targetSpec, v string) (err error) { s.allowDuplicateHeaders, err = parseBool(v); return }},
		{name: "expected-status-codes", arg: "LIST", def: "200", help: "status codes that mean ready: codes and ranges, e.g. 200,301-302",
			set: func(s *targetSpec, v string) (err error) { s.expectedStatus, err = parseStatusCodes(v); return }},
		{name: "expected-body-regex", arg: "REGEX", help: "also require the first 1 MiB of the body to match (RE2 syntax)",
			set: func(s *targetSpec, v string) (err error) {
				s.bodyRegex, err = regexp.Compile(v)
				if err != nil {
					return fmt.Errorf("not a valid regular expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
				}
				return nil
			}},
		{name: "body", arg: "STRING", help: "request body sent with every attempt; may be a reference",
			set: func(s *targetSpec, v string) error { s.body = v; return nil }},
		{name: "skip-tls-verify", def: "false", help: "accept any server certificate",
			set: func(s *targetSpec, v string) (err error) { s.skipTLSVerify, err = parseBool(v); return }},
		{name: "ca-file", arg: "PATH", help: "PEM certificates to trust in addition to the system roots",
			set: func(s *targetSpec, v string) error { s.caFile = v; return nil }},
		{name: "cert-file", arg: "PATH", help: "PEM client certificate for mutual TLS (needs key-file)",
			set: func(s *targetSpec, v string) error { s.certFile = v; return nil }},
		{name: "key-file", arg: "PATH", help: "PEM private key of cert-file",
			set: func(s *targetSpec, v string) error { s.keyFile = v; return nil }},
		{name: "timeout", arg: "DURATION", def: "1s", help: "how long one request may take, body included",
			set: func(s *targetSpec, v string) (err error) { s.timeout, err = parsePositiveDuration(v); return }},
	}),
	"icmp": withCommon([]property{
		{name: "read-timeout", arg: "DURATION", def: "1s", help: "how long to wait for the echo reply",
			set: func(s *targetSpec, v string) (err error) { s.readTimeout, err = parsePositiveDuration(v); return }},
		{name: "write-timeout", arg: "DURATION", def: "1s", help: "how long resolving and sending the echo request may take",
			set: func(s *targetSpec, v string) (err error) { s.writeTimeout, err = parsePositiveDuration(v); return }},
	}),
}

func withCommon(own []property) []property {
	return append(slices.Clip(commonProperties), own...)
}

func typeNames() []string {
	names := make([]string, 0, len(targetTypes))
	for t := range targetTypes {
		names = append(names, t)
	}
	slices.Sort(names)
	return names
}

func propertiesOf(kind string) []property {
	return targetTypes[kind]
}

func findProperty(kind, name string) (property, bool) {
	for _, p := range propertiesOf(kind) {
		if p.name == name {
			return p, true
		}
	}
	return property{}, false
}

// globalFlags are the flags without a dot. Their values are checked in parseArgs.
var globalFlags = []struct{ name, arg, def, help string }{
	{"default-interval", "DURATION", "2s", "pause after a failed attempt, for targets without their own interval"},
	{"timeout", "DURATION", "0", "give up and exit 1 when not every target is ready by then; 0 waits forever"},
	{"log-format", "FORMAT", "text", "text or json (one object per line); logs go to stderr"},
	{"log-level", "LEVEL", "info", "debug (every attempt), info, warn or error"},
	{"version", "", "", "print the version and exit"},
	{"help", "", "", "print this help and exit (also -h)"},
}

// validIdentifier: letters, digits, - and _. A loop rather than a regexp
// compiled at start-up, which every run would pay for.
func validIdentifier(id string) bool {
	for _, c := range []byte(id) {
		if !isWordByte(c) {
			return false
		}
	}
	return id != ""
}

// isWordByte is a letter, digit, - or _: what an identifier is made of, and
// what conceal treats as part of a word.
func isWordByte(b byte) bool {
	return b == '_' || b == '-' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

// parseArgs turns the command line into options. It reports every problem it
// finds, joined, rather than stopping at the first.
func parseArgs(args []string) (*options, error) {
	opts := &options{defaultInterval: 2 * time.Second, logFormat: "text", logLevel: slog.LevelInfo}
	var problems []error
	fail := func(format string, a ...any) { problems = append(problems, fmt.Errorf(format, a...)) }
	seenGlobal := map[string]bool{}
	byKey := map[string]*targetSpec{}

	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			opts.command = args[i+1:]
			i = len(args)
			continue
		case arg == "-h":
			opts.help = true
			continue
		case !strings.HasPrefix(arg, "-"):
			fail("unexpected argument %q: targets are flags such as --tcp.db.address=HOST:PORT, and a command to run goes after --", arg)
			continue
		case !strings.HasPrefix(arg, "--"):
			fail("unknown flag %q: flags start with two dashes, e.g. -%s", arg, arg)
			continue
		}

		name, value, hasValue := strings.Cut(arg[2:], "=")
		isBool := false
		var prop property
		var spec *targetSpec
		if strings.Contains(name, ".") {
			var err error
			spec, prop, err = lookupTargetFlag(name, byKey, opts)
			if err != nil {
				problems = append(problems, err)
				// Skip a value that belongs to the bad flag, so it is not
				// reported again as a stray argument.
				if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
					i++
				}
				continue
			}
			isBool = prop.boolean()
		} else {
			known := false
			for _, g := range globalFlags {
				if g.name == name {
					known, isBool = true, g.arg == ""
				}
			}
			if !known {
				fail("unknown flag --%s%s", name, suggest(name, globalNames(), "--"))
				continue
			}
		}

		if !hasValue {
			switch {
			case isBool:
				value = "true"
			case i+1 < len(args) && !strings.HasPrefix(args[i+1], "--"):
				i++
				value = args[i]
			default:
				fail("--%s needs a value", name)
				continue
			}
		}

		if spec != nil {
			if spec.isGiven(prop.name) && !prop.repeatable {
				fail("%s is given more than once", spec.flag(prop.name))
				continue
			}
			spec.markGiven(prop.name)
			if err := prop.set(spec, value); err != nil {
				fail("%s=%s: %v", spec.flag(prop.name), shownValue(prop.name, value), err)
			}
			continue
		}

		if seenGlobal[name] {
			fail("--%s is given more than once", name)
			continue
		}
		seenGlobal[name] = true
		if err := setGlobal(opts, name, value); err != nil {
			fail("--%s=%s: %v", name, value, err)
		}
	}

	for _, s := range opts.targets {
		problems = append(problems, finishTarget(s, opts.defaultInterval)...)
	}
	if len(opts.targets) == 0 && !opts.help && !opts.version {
		fail("no targets: add at least one, e.g. --tcp.db.address=localhost:5432 (see --help)")
	}
	if len(opts.command) == 0 && slices.Contains(args, "--") && !opts.help && !opts.version {
		fail("nothing after --: give the command to run once every target is ready")
	}
	return opts, errors.Join(problems...)
}

// lookupTargetFlag splits type.id.property, checks each part, and returns the
// target it belongs to, creating it on first mention.
func lookupTargetFlag(name string, byKey map[string]*targetSpec, opts *options) (*targetSpec, property, error) {
	parts := strings.Split(name, ".")
	if len(parts) != 3 {
		return nil, property{}, fmt.Errorf("--%s: target flags have the form --<type>.<identifier>.<property>, e.g. --tcp.db.address", name)
	}
	kind, id, propName := parts[0], parts[1], parts[2]
	if _, ok := targetTypes[kind]; !ok {
		return nil, property{}, fmt.Errorf("--%s: unknown target type %q (types are %s)", name, kind, strings.Join(typeNames(), ", "))
	}
	if !validIdentifier(id) {
		return nil, property{}, fmt.Errorf("--%s: identifier %q may only contain letters, digits, - and _", name, id)
	}
	prop, ok := findProperty(kind, propName)
	if !ok {
		var names []string
		for _, p := range propertiesOf(kind) {
			names = append(names, p.name)
		}
		return nil, property{}, fmt.Errorf("--%s: %s targets have no property %q%s", name, kind, propName, suggest(propName, names, ""))
	}
	key := kind + "." + id
	spec := byKey[key]
	if spec == nil {
		spec = &targetSpec{kind: kind, id: id}
		byKey[key] = spec
		opts.targets = append(opts.targets, spec)
	}
	return spec, prop, nil
}

// finishTarget applies defaults and the checks that need the whole target.
func finishTarget(s *targetSpec, defaultInterval time.Duration) []error {
	var problems []error
	for _, p := range propertiesOf(s.kind) {
		if p.def != "" && !s.isGiven(p.name) {
			if err := p.set(s, p.def); err != nil {
				panic("bad default for " + p.name) // a programming error, caught by tests
			}
		}
	}
	if s.name == "" {
		s.name = s.id
	}
	if s.interval == 0 {
		s.interval = defaultInterval
	}
	if !s.isGiven("address") {
		problems = append(problems, fmt.Errorf("%s is missing: every target needs an address", s.flag("address")))
	}
	if !s.allowDuplicateHeaders {
		seen := map[string]bool{}
		for _, h := range s.headers {
			key := strings.ToLower(h.name)
			if seen[key] {
				problems = append(problems, fmt.Errorf("%s: header %q is given more than once; set %s=true to send every value",
					s.flag("header"), h.name, s.flag("allow-duplicate-headers")))
			}
			seen[key] = true
		}
	}
	if (s.certFile == "") != (s.keyFile == "") {
		problems = append(problems, fmt.Errorf("%s and %s go together: mutual TLS needs both the certificate and its key",
			s.flag("cert-file"), s.flag("key-file")))
	}
	return problems
}

func setGlobal(opts *options, name, value string) (err error) {
	switch name {
	case "default-interval":
		opts.defaultInterval, err = parsePositiveDuration(value)
	case "timeout":
		opts.timeout, err = time.ParseDuration(value)
		if err == nil && opts.timeout < 0 {
			err = errors.New("must not be negative (0 waits forever)")
		} else if err != nil {
			err = errors.New("not a duration (use a number with a unit: 30s, 5m)")
		}
	case "log-format":
		if value != "text" && value != "json" {
			return errors.New("want text or json")
		}
		opts.logFormat = value
	case "log-level":
		if err := opts.logLevel.UnmarshalText([]byte(value)); err != nil || !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(value)) {
			return errors.New("want debug, info, warn or error")
		}
	case "help":
		opts.help, err = parseBool(value)
	case "version":
		opts.version, err = parseBool(value)
	}
	return err
}

// shownValue keeps secrets out of error messages: header values and bodies
// are never echoed.
func shownValue(prop, value string) string {
	switch prop {
	case "header":
		if name, _, ok := strings.Cut(value, "="); ok {
			return name + "=…"
		}
		return "…" // without =, the whole value may be a secret
	case "body":
		return "…"
	}
	return value
}

func parsePositiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("not a duration (use a number with a unit: 500ms, 2s, 1m)")
	}
	if d <= 0 {
		return 0, errors.New("must be greater than zero")
	}
	return d, nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errors.New("want true or false")
}

// isToken reports whether s is an RFC 9110 token, the syntax of header names
// and methods.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// statusCodes is a set of accepted HTTP status codes as inclusive ranges.
type statusCodes [][2]int

func parseStatusCodes(v string) (statusCodes, error) {
	var codes statusCodes
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, errors.New("empty entry in the list (want codes and ranges like 200,301-302)")
		}
		lo, hi, isRange := strings.Cut(item, "-")
		from, err := parseStatusCode(lo)
		if err != nil {
			return nil, err
		}
		to := from
		if isRange {
			if to, err = parseStatusCode(hi); err != nil {
				return nil, err
			}
			if to < from {
				return nil, fmt.Errorf("range %s runs backwards (want low-high, e.g. %d-%d)", item, to, from)
			}
		}
		codes = append(codes, [2]int{from, to})
	}
	return codes, nil
}

func parseStatusCode(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || len(s) != 3 {
		return 0, fmt.Errorf("%q is not a status code (want a number from 100 to 599)", s)
	}
	if n < 100 || n > 599 {
		return 0, fmt.Errorf("%d is outside 100-599", n)
	}
	return n, nil
}

func (c statusCodes) contains(code int) bool {
	for _, r := range c {
		if r[0] <= code && code <= r[1] {
			return true
		}
	}
	return false
}

func (c statusCodes) String() string {
	parts := make([]string, len(c))
	for i, r := range c {
		parts[i] = strconv.Itoa(r[0])
		if r[1] != r[0] {
			parts[i] += "-" + strconv.Itoa(r[1])
		}
	}
	if len(parts) > 1 {
		return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
	}
	return strings.Join(parts, "")
}

func globalNames() []string {
	names := make([]string, len(globalFlags))
	for i, g := range globalFlags {
		names[i] = g.name
	}
	return names
}

// suggest names the closest candidate when it is close enough to be a typo.
func suggest(got string, candidates []string, prefix string) string {
	best, bestDist := "", 4
	for _, c := range candidates {
		if d := editDistance(got, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s%s?)", prefix, best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// usage renders the help text from the same tables the parser uses, so it
// always lists every flag and property with its default.
func usage() string {
	var b strings.Builder
	b.WriteString(`portpatrol waits until network dependencies are ready, then exits 0 or runs a command.

Usage:
  portpatrol [flags] --<type>.<identifier>.<property>=<value> ... [-- COMMAND [ARGS...]]

Every target is checked at once and retried at its interval until it answers.
Values may be written --flag=value or --flag value; booleans may stand alone.

Flags:
`)
	for _, g := range globalFlags {
		writeHelpLine(&b, "--"+g.name, g.arg, g.def, g.help)
	}
	for _, kind := range typeNames() {
		fmt.Fprintf(&b, "\n%s target properties (--%s.<identifier>.<property>):\n", strings.ToUpper(kind), kind)
		for _, p := range propertiesOf(kind) {
			writeHelpLine(&b, p.name, p.arg, p.def, p.help)
		}
	}
	b.WriteString(`
References (for address, header values and body):
  env:NAME                 the environment variable NAME
  file:PATH                the whole file, trimmed
  file:PATH//KEY           KEY from a KEY=VALUE file
  json:PATH//a.b.0.c       a value by dot path; numbers index arrays
  yaml:PATH//a.b.0.c       the same for YAML
  ini:PATH//Section.Key    a key in a section (ini:PATH//Key: before any section)
  $VAR in PATH is expanded; anything else is taken literally.

Exit codes:
  0    every target is ready (or, with --, the command's own exit code)
  1    --timeout passed before every target was ready
  2    invalid flags or configuration
  126  the command after -- is not executable
  127  the command after -- was not found
  130  interrupted (SIGINT); 143: terminated (SIGTERM)
`)
	return b.String()
}

func writeHelpLine(b *strings.Builder, name, arg, def, help string) {
	left := "  " + name
	if arg != "" {
		left += " " + arg
	}
	if def != "" {
		help += " (default " + def + ")"
	}
	fmt.Fprintf(b, "%-36s %s\n", left, help)
}
