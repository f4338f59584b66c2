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
	defaultRetry    retry         // maxInterval 0: --default-max-interval not given
	timeout         time.Duration // overall deadline; 0 waits forever
	logFormat       string
	logLevel        slog.Level
	help            bool
	version         bool
	targets         []*targetSpec
	command         []string // what to exec once every target is ready
}

// targetSpec is one target as written on the command line. Its address, and
// the values of properties marked reference, may still be references (env:,
// file:, ...) that the type resolves when it builds its checker.
type targetSpec struct {
	kind     string
	id       string
	name     string
	address  string
	interval time.Duration
	retry    retry         // backoff, max-interval, max-attempts, success-threshold
	timeout  time.Duration // per attempt, for types with a timeout property
	settings any           // the type's own properties, e.g. *httpSettings
	given    uint64        // bit i: propertiesOf(kind)[i] was on the command line
}

// flag is the spelling used in messages: --http.web.address.
func (s *targetSpec) flag(prop string) string {
	return "--" + s.kind + "." + s.id + "." + prop
}

// isGiven and markGiven track which properties the command line set, as
// bits rather than a map: a thousand targets should cost little.
func (s *targetSpec) isGiven(name string) bool { return s.given&s.bit(name) != 0 }
func (s *targetSpec) markGiven(name string)    { s.given |= s.bit(name) }

func (s *targetSpec) bit(name string) uint64 {
	for i, p := range propertiesOf(s.kind) {
		if p.name == name {
			return 1 << i
		}
	}
	panic("no property " + name) // callers pass names from the property table
}

// targetType is everything one kind of target brings. Each type's own file
// registers it, so that nothing else has to know its name.
type targetType struct {
	ready      string     // what ready means, one line for --help
	properties []property // the common ones first, added by register
	// settings makes a target's own settings value, which its properties
	// fill in (nil: the type has none beyond the common ones).
	settings func() any
	// finish checks what needs several properties, after defaults.
	finish func(s *targetSpec) []error
	// prepare runs once per run, before building, when a target of the type
	// exists: decisions that belong to the process rather than a target.
	prepare func(log *slog.Logger) error
	// build turns a target, its address resolved, into a checker. Address
	// problems are returned as addressError; others name their own flag.
	build func(s *targetSpec, address string) (built, []error)
}

// targetTypes is the one table of types, filled by each type's init.
var targetTypes = map[string]*targetType{}

func register(name string, t *targetType) {
	t.properties = append(slices.Clip(commonProperties), t.properties...)
	targetTypes[name] = t
}

// property is one --<type>.<id>.<property> setting: how its value is parsed,
// its default, and its line in the help text.
type property struct {
	name       string
	arg        string // placeholder shown in help; "" for booleans
	def        string // applied through set when not given; "" means none
	help       string
	repeatable bool
	secret     bool // never echo the value in an error (KEY=VALUE shows the key)
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
	{name: "backoff", arg: "KIND", help: "constant, or exponential: the pause doubles after each failure in a row, up to max-interval, ±10 % jitter (default: --default-backoff)",
		set: func(s *targetSpec, v string) (err error) { s.retry.exponential, err = parseBackoff(v); return }},
	{name: "max-interval", arg: "DURATION", help: "cap of an exponential pause, at least the interval (default: --default-max-interval)",
		set: func(s *targetSpec, v string) (err error) { s.retry.maxInterval, err = parsePositiveDuration(v); return }},
	{name: "max-attempts", arg: "N", help: "give up after N failed attempts and exit 1; 0: never (default: --default-max-attempts)",
		set: func(s *targetSpec, v string) (err error) { s.retry.maxAttempts, err = parseCount(v, 0); return }},
	{name: "success-threshold", arg: "N", help: "ready after N successful attempts in a row (default: --default-success-threshold)",
		set: func(s *targetSpec, v string) (err error) { s.retry.successThreshold, err = parseCount(v, 1); return }},
}

// timeoutProperty is the per-attempt deadline most types share.
func timeoutProperty(help string) property {
	return property{name: "timeout", arg: "DURATION", def: "1s", help: help,
		set: func(s *targetSpec, v string) (err error) { s.timeout, err = parsePositiveDuration(v); return }}
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
	return targetTypes[kind].properties
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
	{"default-backoff", "KIND", "constant", "constant or exponential, for targets without their own backoff"},
	{"default-max-interval", "DURATION", "30s", "cap of an exponential pause, for targets without their own"},
	{"default-max-attempts", "N", "0", "failed attempts before a target is given up (exit 1), for targets without their own; 0: never"},
	{"default-success-threshold", "N", "1", "successful attempts in a row that make a target ready, for targets without their own"},
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
	opts := &options{defaultInterval: 2 * time.Second, defaultRetry: retry{successThreshold: 1}, logFormat: "text", logLevel: slog.LevelInfo}
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
				fail("%s=%s: %v", spec.flag(prop.name), shownValue(prop, value), err)
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

	if m := opts.defaultRetry.maxInterval; m != 0 && m < opts.defaultInterval && len(opts.targets) > 0 {
		fail("--default-max-interval=%v: below --default-interval=%v; the cap must be at least the interval", m, opts.defaultInterval)
	}
	for _, s := range opts.targets {
		problems = append(problems, finishTarget(s, opts)...)
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
		if newSettings := targetTypes[kind].settings; newSettings != nil {
			spec.settings = newSettings()
		}
		byKey[key] = spec
		opts.targets = append(opts.targets, spec)
	}
	return spec, prop, nil
}

// finishTarget applies defaults, the global ones included (whatever their
// place on the command line), and the checks that need the whole target.
func finishTarget(s *targetSpec, opts *options) []error {
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
		s.interval = opts.defaultInterval
	}
	problems = append(problems, finishRetry(s, opts)...)
	if !s.isGiven("address") {
		problems = append(problems, fmt.Errorf("%s is missing: every target needs an address", s.flag("address")))
	}
	if finish := targetTypes[s.kind].finish; finish != nil {
		problems = append(problems, finish(s)...)
	}
	return problems
}

// finishRetry fills in the retry policy from the --default-* flags and checks
// the cap against the interval.
func finishRetry(s *targetSpec, opts *options) []error {
	r, def := &s.retry, opts.defaultRetry
	if !s.isGiven("backoff") {
		r.exponential = def.exponential
	}
	if !s.isGiven("max-attempts") {
		r.maxAttempts = def.maxAttempts
	}
	if r.successThreshold == 0 {
		r.successThreshold = def.successThreshold
	}
	if r.maxInterval >= s.interval {
		return nil
	}
	intervalFlag := "--default-interval"
	if s.isGiven("interval") {
		intervalFlag = s.flag("interval")
	}
	switch {
	case r.maxInterval != 0:
		return []error{fmt.Errorf("%s=%v: below %s=%v; the cap must be at least the interval", s.flag("max-interval"), r.maxInterval, intervalFlag, s.interval)}
	case def.maxInterval == 0:
		r.maxInterval = max(defaultMaxInterval, s.interval) // the default cap yields to a longer interval
	case def.maxInterval >= s.interval:
		r.maxInterval = def.maxInterval
	case s.isGiven("interval"):
		return []error{fmt.Errorf("--default-max-interval=%v: below %s=%v; the cap must be at least the interval (set %s)", def.maxInterval, intervalFlag, s.interval, s.flag("max-interval"))}
	}
	return nil // below --default-interval: reported once, in parseArgs
}

func setGlobal(opts *options, name, value string) (err error) {
	switch name {
	case "default-interval":
		opts.defaultInterval, err = parsePositiveDuration(value)
	case "default-backoff":
		opts.defaultRetry.exponential, err = parseBackoff(value)
	case "default-max-interval":
		opts.defaultRetry.maxInterval, err = parsePositiveDuration(value)
	case "default-max-attempts":
		opts.defaultRetry.maxAttempts, err = parseCount(value, 0)
	case "default-success-threshold":
		opts.defaultRetry.successThreshold, err = parseCount(value, 1)
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

// shownValue keeps secrets out of error messages: the values of secret
// properties are never echoed, though a KEY=VALUE shows its key.
func shownValue(p property, value string) string {
	if !p.secret {
		return value
	}
	if name, _, ok := strings.Cut(value, "="); ok && p.arg == "KEY=VALUE" {
		return name + "=…"
	}
	return "…" // without =, the whole value may be a secret
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

// parseBackoff reads a backoff: true for exponential.
func parseBackoff(v string) (bool, error) {
	switch v {
	case "constant":
		return false, nil
	case "exponential":
		return true, nil
	}
	return false, errors.New("want constant or exponential")
}

// parseCount reads a whole number of at least least.
func parseCount(v string, least int) (int, error) {
	n, err := strconv.Atoi(v)
	switch {
	case err != nil && errors.Is(err, strconv.ErrRange):
		return 0, errors.New("too large")
	case err != nil:
		return 0, errors.New("not a whole number")
	case n < least && least == 0:
		return 0, errors.New("must not be negative (0: never give up)")
	case n < least:
		return 0, fmt.Errorf("must be at least %d", least)
	}
	return n, nil
}

func compileRegex(v string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(v)
	if err != nil {
		return nil, fmt.Errorf("not a valid regular expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return re, nil
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

Every target is checked at once and retried at its interval (or backoff) until it answers.
Values may be written --flag=value or --flag value; booleans may stand alone.

Flags:
`)
	for _, g := range globalFlags {
		writeHelpLine(&b, "--"+g.name, g.arg, g.def, g.help)
	}
	b.WriteString("\nEvery target (--<type>.<identifier>.<property>):\n")
	for _, p := range commonProperties {
		writeHelpLine(&b, p.name, p.arg, p.def, p.help)
	}
	for _, kind := range typeNames() {
		fmt.Fprintf(&b, "\n%s (--%s.<identifier>.<property>): ready %s\n", kind, kind, targetTypes[kind].ready)
		for _, p := range propertiesOf(kind)[len(commonProperties):] {
			writeHelpLine(&b, p.name, p.arg, p.def, p.help)
		}
	}
	b.WriteString(`
References (for address, and for values whose help says they may be one):
  env:NAME                 the environment variable NAME
  file:PATH                the whole file, trimmed
  file:PATH//KEY           KEY from a KEY=VALUE file
  json:PATH//a.b.0.c       a value by dot path; numbers index arrays
  yaml:PATH//a.b.0.c       the same for YAML
  ini:PATH//Section.Key    a key in a section (ini:PATH//Key: before any section)
  $VAR in PATH is expanded; anything else is taken literally.

Exit codes:
  0    every target is ready (or, with --, the command's own exit code)
  1    --timeout passed before every target was ready, or a target used up its max-attempts
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
