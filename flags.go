package main

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// options is everything the command line asked for.
type options struct {
	defaultInterval time.Duration
	defaultRetry    retry         // maxInterval 0: --default-max-interval not given
	timeout         time.Duration // overall deadline; 0 waits forever
	logFormat       string
	logLevel        logLevel
	help            bool
	version         bool
	probe           bool // one attempt per target, for a health check
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
	invert   bool          // ready when an attempt is not: waiting for the target to be gone
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
	ready string // what ready means, one line for --help
	// stillReady ends "<address> ..." in the reason an inverted target is
	// not ready yet ("still accepts connections"); "" reads "is still ready".
	stillReady string
	properties []property // the common ones first, added by register
	// settings makes a target's own settings value, which its properties
	// fill in (nil: the type has none beyond the common ones).
	settings func() any
	// finish checks what needs several properties, after defaults.
	finish func(s *targetSpec) []error
	// prepare runs once per run, before building, when a target of the type
	// exists: decisions that belong to the process rather than a target.
	prepare func(log *logger) error
	// stop runs once the wait is over, before portpatrol exits or runs the
	// command: it ends what the type started that would outlive the process
	// (a credential plugin still running), and refuses to start more.
	stop func()
	// build turns a target, its address resolved, into a checker. Address
	// problems are returned as addressError; others name their own flag.
	build func(s *targetSpec, address string) (built, []error)
	// addressParams are parameters the address carries (a DSN's tls), each
	// with where it goes ("?tls=true in a DSN"): one given as a property is
	// told so, rather than offered a property of a like name.
	addressParams map[string]string
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
	// aliases are names people try for this property (url for address):
	// never accepted, only suggested when they are given.
	aliases []string
	set     func(s *targetSpec, v string) error
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
	{name: "address", arg: "ADDRESS", aliases: []string{"url", "host", "addr", "cmd", "command"}, help: "what to check; a literal or a reference (env:, file:, json:, yaml:, ini:)",
		set: func(s *targetSpec, v string) error {
			if strings.TrimSpace(v) == "" {
				return errors.New("must not be empty")
			}
			s.address = v
			return nil
		}},
	{name: "interval", arg: "DURATION", help: "pause after a failed attempt, at least 10ms (default: --default-interval)",
		set: func(s *targetSpec, v string) (err error) { s.interval, err = parseInterval(v); return }},
	{name: "backoff", arg: "KIND", help: "constant, or exponential: the pause doubles after each failure in a row, up to max-interval, ±10 % jitter (default: --default-backoff)",
		set: func(s *targetSpec, v string) (err error) { s.retry.exponential, err = parseBackoff(v); return }},
	{name: "max-interval", arg: "DURATION", help: "cap of an exponential pause, at least the interval (default: --default-max-interval)",
		set: func(s *targetSpec, v string) (err error) { s.retry.maxInterval, err = parsePositiveDuration(v); return }},
	{name: "max-attempts", arg: "N", help: "give up after N failed attempts and exit 1; 0: never (default: --default-max-attempts)",
		set: func(s *targetSpec, v string) (err error) { s.retry.maxAttempts, err = parseCount(v, 0); return }},
	{name: "success-threshold", arg: "N", help: "ready after N successful attempts in a row (default: --default-success-threshold)",
		set: func(s *targetSpec, v string) (err error) { s.retry.successThreshold, err = parseCount(v, 1); return }},
	{name: "invert", def: "false", help: "ready when an attempt is not ready, for any reason: wait until the target is gone",
		set: func(s *targetSpec, v string) (err error) { s.invert, err = parseBool(v); return }},
}

// timeoutProperty is the per-attempt deadline most types share.
func timeoutProperty(help string) property {
	return property{name: "timeout", arg: "DURATION", def: "1s", help: help,
		set: func(s *targetSpec, v string) (err error) { s.timeout, err = parsePositiveDuration(v); return }}
}

// passwordProperty is the password property of every type that logs in:
// secret, a reference as usual, and never empty, since a shell's unset
// $DB_PASSWORD would quietly drop the check of credentials.
func passwordProperty(help string, field func(s *targetSpec) *string) property {
	return property{name: "password", arg: "PASSWORD", secret: true, help: help,
		set: func(s *targetSpec, v string) error {
			if v == "" {
				return errors.New("must not be empty: leave the property out for no password")
			}
			*field(s) = v
			return nil
		}}
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
	{"default-interval", "DURATION", "2s", "pause after a failed attempt, for targets without their own interval; at least 10ms"},
	{"default-backoff", "KIND", "constant", "constant or exponential, for targets without their own backoff"},
	{"default-max-interval", "DURATION", "30s", "cap of an exponential pause, for targets without their own"},
	{"default-max-attempts", "N", "0", "failed attempts before a target is given up (exit 1), for targets without their own; 0: never"},
	{"default-success-threshold", "N", "1", "successful attempts in a row that make a target ready, for targets without their own"},
	{"timeout", "DURATION", "0", "give up and exit 1 when not every target is ready by then; 0 waits forever"},
	{"probe", "", "", "health check: one attempt per target, all at once; exit 0 if all are ready, else 1, silent when healthy; retry settings do not apply"},
	{"log-format", "FORMAT", "text", "text or json (one object per line, start-up errors too); logs go to stderr"},
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
// finds, joined, rather than stopping at the first. A value is echoed only
// through quoteValue or shownValue; a flag-looking argument that is rejected
// shows its name alone, so that no value written after it leaks.
func parseArgs(args []string) (*options, error) {
	p := &argParser{
		args:       args,
		opts:       &options{defaultInterval: 2 * time.Second, defaultRetry: retry{successThreshold: 1}, logFormat: "text", logLevel: levelInfo},
		seenGlobal: map[string]bool{},
		byKey:      make(map[string]*targetSpec, len(args)), // at most one target per argument: no garbage from growing
	}
	for i := 0; i < len(args); i++ {
		i = p.arg(i)
	}
	p.finishTargets()
	p.checkDefaultCap()
	p.checkTargetsAndCommand()
	return p.opts, errors.Join(p.problems...)
}

// argParser is parseArgs's state while it reads the arguments in order.
type argParser struct {
	args       []string
	opts       *options
	problems   []error
	seenGlobal map[string]bool
	byKey      map[string]*targetSpec
	// rejectedTarget: a target-looking flag was rejected, so "no targets"
	// would only repeat it.
	rejectedTarget bool
	// afterSecret names the flag whose secret value (or address) the previous
	// argument held: a stray argument right after it is likely the rest of it.
	afterSecret string
}

func (p *argParser) fail(format string, a ...any) {
	p.problems = append(p.problems, errorf(format, a...))
}

// skipValue passes over the argument after a rejected flag written without
// =, when it looks like that flag's value, so that it is neither reported
// again as a stray argument nor echoed.
func (p *argParser) skipValue(i int, hasValue bool) int {
	if !hasValue && i+1 < len(p.args) && !strings.HasPrefix(p.args[i+1], "-") {
		return i + 1
	}
	return i
}

// arg reads the argument at i, and the value after it if it takes one; it
// returns the index of the last argument it read.
func (p *argParser) arg(i int) int {
	arg := p.args[i]
	secretBefore := p.afterSecret
	p.afterSecret = ""
	switch {
	case arg == "--":
		p.opts.command = p.args[i+1:]
		return len(p.args)
	case arg == "-h":
		p.opts.help = true
		return i
	case !strings.HasPrefix(arg, "-"):
		return p.stray(i, secretBefore)
	case !strings.HasPrefix(arg, "--"):
		name, _, hasValue := strings.Cut(arg[1:], "=")
		hint := suggest(name, globalCandidates(), "--")
		if strings.Contains(name, ".") || slices.Contains(globalNames(), name) {
			hint = ", e.g. " + nameOnly("--"+name, hasValue)
		}
		p.fail("unknown flag %s: flags start with two dashes%s", nameOnly("-"+name, hasValue), hint)
		p.rejectedTarget = p.rejectedTarget || strings.Contains(name, ".")
		return p.skipValue(i, hasValue)
	}
	return p.flag(i)
}

// stray reports an argument without dashes before --.
func (p *argParser) stray(i int, secretBefore string) int {
	name, _, hasValue := strings.Cut(p.args[i], "=")
	switch {
	case looksLikeFlag(name):
		p.fail("unexpected argument %s: flags start with two dashes, e.g. %s", nameOnly(name, hasValue), nameOnly("--"+name, hasValue))
		p.rejectedTarget = p.rejectedTarget || strings.Contains(name, ".")
		return p.skipValue(i, hasValue)
	case secretBefore != "":
		p.fail("unexpected argument after the value of %s, not shown as it may be part of that value: quote a value that holds spaces", secretBefore)
	default:
		p.fail("unexpected argument %s: targets are flags such as --tcp.db.address=HOST:PORT, and a command to run goes after --", quoteString(p.args[i]))
	}
	return i
}

// flag reads a flag with two dashes: a target's property or a global flag.
func (p *argParser) flag(i int) int {
	name, value, hasValue := strings.Cut(p.args[i][2:], "=")
	isBool := false
	var prop property
	var spec *targetSpec
	if strings.Contains(name, ".") {
		var err error
		spec, prop, err = lookupTargetFlag(name, p.byKey, p.opts)
		if err != nil {
			p.problems = append(p.problems, err)
			p.rejectedTarget = true
			return p.skipValue(i, hasValue)
		}
		isBool = prop.boolean()
	} else {
		known := false
		for _, g := range globalFlags {
			if g.name == name {
				known, isBool = true, g.arg == ""
			}
		}
		if _, isType := targetTypes[name]; isType && !known {
			p.fail("unknown flag --%s: a target flag names the target and a property, e.g. --%s.db.address=…", name, name)
			p.rejectedTarget = true
			return p.skipValue(i, hasValue)
		}
		if !known {
			p.fail("unknown flag %s%s", quoteValue("--"+name), suggest(name, globalCandidates(), "--"))
			return p.skipValue(i, hasValue)
		}
	}

	if !hasValue {
		var ok bool
		if i, value, ok = p.valueAfter(i, isBool); !ok {
			p.fail("--%s needs a value", name)
			if spec != nil {
				spec.markGiven(prop.name) // reported here: not also as missing
			}
			return i
		}
	}
	if spec != nil {
		p.setProperty(spec, prop, value)
	} else {
		p.setGlobal(name, value)
	}
	return i
}

// valueAfter takes the value of the flag at i, written without =, from the
// next argument; a boolean stands alone unless true or false follows.
func (p *argParser) valueAfter(i int, isBool bool) (last int, value string, ok bool) {
	switch {
	case isBool:
		// --skip-tls-verify false: a value may follow as the next
		// argument, and for a boolean only these two can be meant.
		if i+1 < len(p.args) && (strings.EqualFold(p.args[i+1], "true") || strings.EqualFold(p.args[i+1], "false")) {
			return i + 1, p.args[i+1], true
		}
		return i, "true", true
	case i+1 < len(p.args) && !strings.HasPrefix(p.args[i+1], "--"):
		return i + 1, p.args[i+1], true
	}
	return i, "", false
}

func (p *argParser) setProperty(spec *targetSpec, prop property, value string) {
	if prop.secret || prop.name == "address" { // a password may be split off
		p.afterSecret = spec.flag(prop.name)
	}
	if spec.isGiven(prop.name) && !prop.repeatable {
		p.fail("%s is given more than once", spec.flag(prop.name))
		return
	}
	spec.markGiven(prop.name)
	if err := prop.set(spec, value); err != nil {
		p.fail("%s=%s: %v", spec.flag(prop.name), shownValue(prop, value), err)
	}
}

func (p *argParser) setGlobal(name, value string) {
	if p.seenGlobal[name] {
		p.fail("--%s is given more than once", name)
		return
	}
	p.seenGlobal[name] = true
	if err := setGlobal(p.opts, name, value); err != nil {
		p.fail("--%s=%s: %v", name, quoteValue(value), err)
	}
}

// finishTargets completes each target and checks that no two targets of a
// type share a name: a log line tells targets apart by type and name.
func (p *argParser) finishTargets() {
	// Sized up front: a map grown to a thousand entries leaves its smaller
	// tables as garbage.
	named := make(map[[2]string]*targetSpec, len(p.opts.targets))
	for _, s := range p.opts.targets {
		p.problems = append(p.problems, finishTarget(s, p.opts)...)
		key := [2]string{s.kind, s.name}
		first, taken := named[key]
		if !taken {
			named[key] = s
			continue
		}
		given, other := s, first
		if !s.isGiven("name") {
			given, other = first, s
		}
		p.fail("%s=%s: %s.%s is named %s too; give each target of a type its own name",
			given.flag("name"), quoteValue(given.name), "--"+other.kind, other.id, quoteValue(other.name))
	}
}

// checkDefaultCap: as max-interval on a target, the default cap is an error
// where it caps nothing: no target backs off exponentially without a cap of
// its own.
func (p *argParser) checkDefaultCap() {
	usesDefaultCap := false
	for _, s := range p.opts.targets {
		usesDefaultCap = usesDefaultCap || s.retry.exponential && !s.isGiven("max-interval")
	}
	switch m := p.opts.defaultRetry.maxInterval; {
	case m == 0 || len(p.opts.targets) == 0:
	case !usesDefaultCap:
		p.fail("--default-max-interval=%v: only an exponential backoff has a cap, and no target backs off exponentially without its own max-interval; add --default-backoff=exponential", m)
	case m < p.opts.defaultInterval:
		p.fail("--default-max-interval=%v: below --default-interval=%v; the cap must be at least the interval", m, p.opts.defaultInterval)
	}
}

// checkTargetsAndCommand: a run needs a target, and a -- needs a command.
func (p *argParser) checkTargetsAndCommand() {
	opts := p.opts
	if len(opts.targets) == 0 && !opts.help && !opts.version && !p.rejectedTarget {
		if flag := targetFlagIn(opts.command); flag != "" {
			p.fail("no targets: target flags must come before -- (%s is after it, in the command)", flag)
		} else {
			p.fail("no targets: add at least one, e.g. --tcp.db.address=localhost:5432 (see --help)")
		}
	}
	if opts.probe && len(opts.command) > 0 {
		p.fail("--probe with a command after --: a probe only reports; remove -- and the command")
	}
	if len(opts.command) == 0 && slices.Contains(p.args, "--") && !opts.help && !opts.version {
		p.fail("nothing after --: give the command to run once every target is ready")
	}
}

// looksLikeFlag reports whether an argument without dashes, up to its =,
// was meant as a flag: a global flag's name or <type>.<identifier>.<property>.
func looksLikeFlag(name string) bool {
	if slices.Contains(globalNames(), name) {
		return true
	}
	parts := strings.Split(name, ".")
	if len(parts) != 3 {
		return false
	}
	if _, ok := targetTypes[strings.ToLower(parts[0])]; !ok {
		return false
	}
	for _, p := range parts {
		if !validIdentifier(p) {
			return false
		}
	}
	return true
}

// nameOnly shows a rejected flag without its value: --http.a.body=….
func nameOnly(name string, hasValue bool) string {
	if hasValue {
		return quoteValue(name) + "=…"
	}
	return quoteValue(name)
}

// targetFlagIn finds a target flag in the command after --, where it is
// taken as the command's own argument.
func targetFlagIn(command []string) string {
	for _, arg := range command {
		if name, _, _ := strings.Cut(arg, "="); strings.HasPrefix(name, "--") && looksLikeFlag(name[2:]) && strings.Contains(name, ".") {
			return quoteValue(name)
		}
	}
	return ""
}

// quoteValue is how every value given by the user appears in an error: as
// written when it is plain printable text, and otherwise in Go's double
// quotes with escapes, so that a line break cannot forge a line of output
// and a terminal escape code cannot act. Empty values and values with
// spaces or quotes are quoted too, so that where a value ends is clear.
func quoteValue(v string) string {
	v, rest := cutValue(v)
	if v == "" || !utf8.ValidString(v) || strings.ContainsAny(v, " \"\\") {
		return strconv.Quote(v) + rest
	}
	for _, r := range v {
		if !strconv.IsPrint(r) {
			return strconv.Quote(v) + rest
		}
	}
	return v + rest
}

// quoteString is %q for a value given by the user, cut as quoteValue cuts.
func quoteString(v string) string {
	v, rest := cutValue(v)
	return strconv.Quote(v) + rest
}

// maxShownValue bounds a value quoted in an error: a 120 KB address would
// otherwise make a 120 KB line.
const maxShownValue = 200

// cutValue keeps the first maxShownValue bytes of a longer v, cut where a
// character starts, and tells the rest as "… (N bytes)", N the whole length.
func cutValue(v string) (head, rest string) {
	if len(v) <= maxShownValue {
		return v, ""
	}
	n := maxShownValue
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return v[:n], "… (" + strconv.Itoa(len(v)) + " bytes)"
}

// lookupTargetFlag splits type.id.property, checks each part, and returns the
// target it belongs to, creating it on first mention.
func lookupTargetFlag(name string, byKey map[string]*targetSpec, opts *options) (*targetSpec, property, error) {
	kind, rest, _ := strings.Cut(name, ".") // not Split: a thousand targets add up
	id, propName, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(propName, ".") {
		return nil, property{}, errorf("%s: target flags have the form --<type>.<identifier>.<property>, e.g. --tcp.db.address", quoteValue("--"+name))
	}
	if _, ok := targetTypes[kind]; !ok {
		var types []candidate
		for _, t := range typeNames() {
			types = append(types, candidate{name: t})
		}
		return nil, property{}, errorf("%s: unknown target type %s (types are %s)%s",
			quoteValue("--"+name), quoteString(kind), strings.Join(typeNames(), ", "), suggest(kind, types, ""))
	}
	if !validIdentifier(id) {
		return nil, property{}, errorf("%s: identifier %s may only contain letters, digits, - and _", quoteValue("--"+name), quoteString(id))
	}
	prop, ok := findProperty(kind, propName)
	if where, isParam := targetTypes[kind].addressParams[strings.ToLower(propName)]; !ok && isParam {
		return nil, property{}, errorf("%s: %s targets have no property %s: it is a parameter of the address (%s)", quoteValue("--"+name), kind, quoteString(propName), where)
	}
	if !ok {
		var props []candidate
		for _, p := range propertiesOf(kind) {
			props = append(props, candidate{p.name, p.aliases})
		}
		return nil, property{}, errorf("%s: %s targets have no property %s%s", quoteValue("--"+name), kind, quoteString(propName), suggest(propName, props, ""))
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
		problems = append(problems, errorf("%s is missing: every target needs an address", s.flag("address")))
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
	if s.isGiven("max-interval") && !r.exponential {
		return []error{errorf("%s=%v: only an exponential backoff has a cap; add %s=exponential", s.flag("max-interval"), r.maxInterval, s.flag("backoff"))}
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
		return []error{errorf("%s=%v: below %s=%v; the cap must be at least the interval", s.flag("max-interval"), r.maxInterval, intervalFlag, s.interval)}
	case def.maxInterval == 0:
		r.maxInterval = max(defaultMaxInterval, s.interval) // the default cap yields to a longer interval
	case def.maxInterval >= s.interval:
		r.maxInterval = def.maxInterval
	case s.isGiven("interval") && r.exponential: // a constant pause has no cap: reported in parseArgs
		return []error{errorf("--default-max-interval=%v: below %s=%v; the cap must be at least the interval (set %s)", def.maxInterval, intervalFlag, s.interval, s.flag("max-interval"))}
	}
	return nil // below --default-interval: reported once, in parseArgs
}

func setGlobal(opts *options, name, value string) (err error) {
	switch name {
	case "default-interval":
		opts.defaultInterval, err = parseInterval(value)
	case "default-backoff":
		opts.defaultRetry.exponential, err = parseBackoff(value)
	case "default-max-interval":
		opts.defaultRetry.maxInterval, err = parsePositiveDuration(value)
	case "default-max-attempts":
		opts.defaultRetry.maxAttempts, err = parseCount(value, 0)
	case "default-success-threshold":
		opts.defaultRetry.successThreshold, err = parseCount(value, 1)
	case "timeout":
		opts.timeout, err = parseDuration(value, "30s, 5m")
		if err == nil && opts.timeout < 0 {
			err = errors.New("must not be negative (0 waits forever)")
		}
	case "log-format":
		value = strings.ToLower(value)
		if value != "text" && value != "json" {
			return errors.New("want text or json")
		}
		opts.logFormat = value
	case "log-level":
		level := slices.Index(levelNames[:], strings.ToUpper(value))
		if level < 0 {
			return errors.New("want debug, info, warn or error")
		}
		opts.logLevel = logLevel(level)
	case "probe":
		opts.probe, err = parseBool(value)
		// --probe=maybe was meant as a probe all the same: its start-up
		// error exits 1, as a probe's must.
		opts.probe = opts.probe || err != nil
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
	if !p.secret || value == "" {
		return quoteValue(value) // an empty value gives nothing away
	}
	if name, _, ok := strings.Cut(value, "="); ok && p.arg == "KEY=VALUE" {
		return quoteValue(name) + "=…"
	}
	return "…" // without =, the whole value may be a secret
}

func parsePositiveDuration(v string) (time.Duration, error) {
	d, err := parseDuration(v, "500ms, 2s, 1m")
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, errors.New("must be greater than zero")
	}
	return d, nil
}

// minInterval is the shortest pause between attempts: below it a target
// that keeps failing would keep a processor busy (1ns made thousands of
// attempts in 300ms), and no dependency becomes ready faster than that.
const minInterval = 10 * time.Millisecond

// parseInterval reads --default-interval and every interval property.
func parseInterval(v string) (time.Duration, error) {
	d, err := parsePositiveDuration(v)
	if err == nil && d < minInterval {
		return 0, errorf("below the minimum of %v: shorter pauses would keep a processor busy", minInterval)
	}
	return d, err
}

// parseDuration tells a value too large for a duration from one that is not
// a duration at all; time.ParseDuration says "invalid" for both.
func parseDuration(v, examples string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err == nil {
		return d, nil
	}
	if durationSyntax(v) {
		return 0, errors.New("too large: at most 2562047h (about 292 years)")
	}
	return 0, errorf("not a duration (use a number with a unit: %s)", examples)
}

// durationSyntax reports whether v is written as time.ParseDuration
// expects: a sign, then numbers each followed by a unit.
func durationSyntax(v string) bool {
	v = strings.TrimPrefix(strings.TrimPrefix(v, "-"), "+")
	if v == "" {
		return false
	}
	for v != "" {
		n := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		number := v
		if n >= 0 {
			number = v[:n]
		}
		if n <= 0 || strings.Count(number, ".") > 1 || strings.Trim(number, ".") == "" {
			return false // no number, or no unit after it
		}
		v = v[n:]
		u := strings.IndexFunc(v, func(r rune) bool { return r >= '0' && r <= '9' || r == '.' })
		if u < 0 {
			u = len(v)
		}
		switch v[:u] {
		case "ns", "us", "µs", "μs", "ms", "s", "m", "h":
		default:
			return false
		}
		v = v[u:]
	}
	return true
}

// parseBackoff reads a backoff: true for exponential.
func parseBackoff(v string) (bool, error) {
	switch strings.ToLower(v) {
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
		return 0, errorf("must be at least %d", least)
	}
	return n, nil
}

// nonEmpty rejects an empty value where an empty one would mean nothing.
func nonEmpty(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func compileRegex(v string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(v)
	if se, ok := errors.AsType[*syntax.Error](err); ok {
		// The part of the expression it names is the user's text: quoted.
		return nil, errorf("not a valid regular expression: %s: %s", se.Code, quoteValue(se.Expr))
	}
	if err != nil {
		return nil, errors.New("not a valid regular expression")
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

// globalAliases are what people try for a global flag, suggested only.
var globalAliases = map[string][]string{"version": {"v"}}

func globalCandidates() []candidate {
	var cs []candidate
	for _, g := range globalFlags {
		cs = append(cs, candidate{g.name, globalAliases[g.name]})
	}
	return cs
}

// candidate is a name a mistyped one may have meant, with its aliases.
type candidate struct {
	name    string
	aliases []string
}

// suggest names what got most likely meant, trying in turn: the same name
// in another case (names are never matched case-insensitively, only
// suggested), a declared alias, names it begins (pass: password), names
// it is a whole part of (timeout:
// read-timeout and write-timeout), and the closest name by edit distance
// when that is close enough to be a typo.
func suggest(got string, candidates []candidate, prefix string) string {
	low := strings.ToLower(got)
	var picks []string
	for _, match := range []func(c candidate) bool{
		func(c candidate) bool { return c.name == low },
		func(c candidate) bool { return slices.Contains(c.aliases, low) },
		func(c candidate) bool { return len(low) >= 3 && strings.HasPrefix(c.name, low) },
		func(c candidate) bool { return low != "" && strings.Contains("-"+c.name+"-", "-"+low+"-") },
	} {
		for _, c := range candidates {
			if match(c) {
				picks = append(picks, prefix+c.name)
			}
		}
		if len(picks) > 0 {
			break
		}
	}
	if len(picks) == 0 {
		best, bestDist := "", 4
		for _, c := range candidates {
			if d := editDistance(low, c.name); d < bestDist {
				best, bestDist = prefix+c.name, d
			}
		}
		if best == "" {
			return ""
		}
		picks = []string{best}
	}
	list := picks[len(picks)-1]
	if len(picks) > 1 {
		list = strings.Join(picks[:len(picks)-1], ", ") + " or " + list
	}
	return " (did you mean " + list + "?)"
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
  1    --timeout passed before every target was ready, or a target used up its max-attempts;
       with --probe: a target was not ready, or the configuration is invalid
  2    invalid flags or configuration
  126  the command after -- is not executable
  127  the command after -- was not found
  129, 130, 143  ended by SIGHUP, SIGINT or SIGTERM (128 + the signal)
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
