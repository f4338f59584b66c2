package main

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// The front page and the manual are held to the code: every type has a
// page that lists exactly its properties, --help names every type, every
// relative link lands on a file and heading that exist, and every command
// in a sh block parses.

// mdFile is one Markdown file of the documentation, split into what is
// prose and what is fenced code.
type mdFile struct {
	path   string   // relative to the repository, with slashes
	prose  string   // the text outside fences, each fenced line left empty
	blocks []fenced // fenced code blocks, in order
	slugs  map[string]bool
}

type fenced struct {
	info  string // the word after the opening fence: sh, yaml, console, ...
	lines []string
	line  int // line number of the opening fence
}

// docFiles reads README.md and every Markdown file under docs/.
func docFiles(t *testing.T) map[string]*mdFile {
	t.Helper()
	paths := []string{"README.md"}
	err := filepath.WalkDir("docs", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			paths = append(paths, filepath.ToSlash(p))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*mdFile{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = parseMarkdown(p, string(b))
	}
	return files
}

var fenceRE = regexp.MustCompile("^\\s*(```+|~~~+)\\s*([^\\s`]*)")

func parseMarkdown(path, text string) *mdFile {
	f := &mdFile{path: path, slugs: map[string]bool{}}
	var prose []string
	var open *fenced
	fence := ""
	seen := map[string]int{}
	for i, line := range strings.Split(text, "\n") {
		if m := fenceRE.FindStringSubmatch(line); m != nil && open == nil {
			open, fence = &fenced{info: m[2], line: i + 1}, m[1]
			prose = append(prose, "")
			continue
		}
		if trimmed := strings.TrimSpace(line); open != nil && strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
			f.blocks = append(f.blocks, *open)
			open = nil
			prose = append(prose, "")
			continue
		}
		if open != nil {
			open.lines = append(open.lines, line)
			prose = append(prose, "")
			continue
		}
		prose = append(prose, line)
		if h, ok := strings.CutPrefix(line, "#"); ok {
			h = strings.TrimLeft(h, "#")
			if strings.HasPrefix(h, " ") {
				slug := githubSlug(h)
				if n := seen[slug]; n > 0 {
					f.slugs[fmt.Sprintf("%s-%d", slug, n)] = true
				} else {
					f.slugs[slug] = true
				}
				seen[slug]++
			}
		}
	}
	f.prose = strings.Join(prose, "\n")
	return f
}

// githubSlug is the anchor GitHub gives a heading: lower case, every
// character but letters, digits, marks, _, - and spaces dropped, spaces
// turned into hyphens.
func githubSlug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestGithubSlug(t *testing.T) {
	t.Parallel()
	for heading, want := range map[string]string{
		" ICMP: raw and unprivileged":            "icmp-raw-and-unprivileged",
		" Compose `depends_on`":                  "compose-depends_on",
		" Common properties, retries and invert": "common-properties-retries-and-invert",
		" Size and speed":                        "size-and-speed",
		" What's new: v1.2 (beta)":               "whats-new-v12-beta",
	} {
		if got := githubSlug(heading); got != want {
			t.Errorf("githubSlug(%q) = %q, want %q", heading, got, want)
		}
	}
}

var (
	codeSpanRE = regexp.MustCompile("`[^`]*`")
	linkRE     = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]*)\)`)
	schemeRE   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// Every relative link resolves to a file of the checkout, and a #fragment
// to a heading of the Markdown file it names.
func TestDocsLinksResolve(t *testing.T) {
	t.Parallel()
	files := docFiles(t)
	checked := 0
	for _, path := range slices.Sorted(maps.Keys(files)) {
		f := files[path]
		for _, m := range linkRE.FindAllStringSubmatch(codeSpanRE.ReplaceAllString(f.prose, "``"), -1) {
			link := m[1]
			if link == "" || schemeRE.MatchString(link) {
				continue
			}
			checked++
			target, fragment, _ := strings.Cut(link, "#")
			file := path
			if target != "" {
				if strings.HasPrefix(target, "/") {
					t.Errorf("%s: link %s is absolute; a relative one works on a code host and in a checkout", path, link)
					continue
				}
				file = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(path), target)))
				if strings.HasPrefix(file, "../") {
					t.Errorf("%s: link %s leaves the repository", path, link)
					continue
				}
				if _, err := os.Stat(file); err != nil {
					t.Errorf("%s: link %s: no file %s", path, link, file)
					continue
				}
			}
			if fragment == "" {
				continue
			}
			g, ok := files[file]
			if !ok {
				t.Errorf("%s: link %s: a #fragment into %s, which is not a Markdown page of the documentation", path, link, file)
				continue
			}
			if !g.slugs[fragment] {
				t.Errorf("%s: link %s: %s has no heading #%s", path, link, file, fragment)
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d relative links found: the link pattern no longer matches the documentation", checked)
	}
}

// propertyTable returns the names in the first column of the one table on
// the page whose header starts "| property |": each cell holds one name in
// backticks, or several separated by commas.
func propertyTable(t *testing.T, f *mdFile) (names []string) {
	t.Helper()
	tables := 0
	lines := strings.Split(f.prose, "\n")
	for i := 0; i < len(lines); i++ {
		if !regexp.MustCompile(`^\|\s*property\s*\|`).MatchString(lines[i]) {
			continue
		}
		tables++
		for i += 2; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
			cell := strings.TrimSpace(strings.Split(lines[i], "|")[1])
			for _, name := range strings.Split(cell, ",") {
				name = strings.TrimSpace(name)
				if len(name) < 3 || name[0] != '`' || name[len(name)-1] != '`' {
					t.Errorf("%s: line %d: the first column must hold property names in backticks, not %q", f.path, i+1, cell)
					continue
				}
				names = append(names, strings.Trim(name, "`"))
			}
		}
	}
	if tables != 1 {
		t.Errorf("%s: %d tables start with \"| property |\", want exactly one", f.path, tables)
	}
	return names
}

// compareNames reports, by name, what a page lists that the code lacks and
// what the code takes that the page does not list.
func compareNames(t *testing.T, where string, listed, want []string) {
	t.Helper()
	var missing, extra, twice []string
	for _, w := range want {
		if !slices.Contains(listed, w) {
			missing = append(missing, w)
		}
	}
	for i, l := range listed {
		if !slices.Contains(want, l) {
			extra = append(extra, l)
		} else if slices.Index(listed, l) != i {
			twice = append(twice, l)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s does not list %s", where, strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		t.Errorf("%s lists %s, which the code does not take", where, strings.Join(extra, ", "))
	}
	if len(twice) > 0 {
		t.Errorf("%s lists %s more than once", where, strings.Join(twice, ", "))
	}
}

// Every type in the type table has its page, whose property table lists
// exactly the type's own properties; the common ones are listed once, on
// the retries page, which every type page links to. The front page's type
// table links every page, and --help names every type.
func TestDocsTypePages(t *testing.T) {
	t.Parallel()
	files := docFiles(t)
	var common []string
	for _, p := range commonProperties {
		common = append(common, p.name)
	}
	retries := files["docs/retries.md"]
	if retries == nil {
		t.Fatal("docs/retries.md is missing")
	}
	compareNames(t, "docs/retries.md's table of the properties every type has", propertyTable(t, retries), common)

	help := runPortpatrol(t, nil, "--help")
	help.mustExit(t, 0)
	readme := files["README.md"]
	for _, kind := range typeNames() {
		page := "docs/types/" + kind + ".md"
		f := files[page]
		if f == nil {
			t.Errorf("the type %s has no page %s", kind, page)
			continue
		}
		var own []string
		for _, p := range propertiesOf(kind)[len(commonProperties):] {
			own = append(own, p.name)
		}
		compareNames(t, page+"'s property table", propertyTable(t, f), own)
		if !strings.Contains(f.prose, "](../retries.md") {
			t.Errorf("%s does not link to ../retries.md, where the common properties are", page)
		}
		for _, name := range common {
			if !strings.Contains(f.prose, "`"+name+"`") {
				t.Errorf("%s does not name the common property %s", page, name)
			}
		}
		if !regexp.MustCompile(`(?m)^\| \[` + "`" + kind + "`" + `\]\(docs/types/` + kind + `\.md\) \|`).MatchString(readme.prose) {
			t.Errorf("README.md's type table has no row [`%s`](docs/types/%s.md)", kind, kind)
		}
		if !strings.Contains(help.stdout, "\n"+kind+" (--"+kind+".<identifier>.<property>)") {
			t.Errorf("--help does not name the type %s", kind)
		}
	}
}

// docEnv gives the variables that commands in sh blocks read through env:
// a harmless value of the kind each one holds.
var docEnv = map[string]string{
	"API_TOKEN":           "t0ken",
	"ORDERS_TOKEN":        "t0ken",
	"DATABASE_URL":        "postgresql://app:s3cret@127.0.0.1:5432/orders",
	"RABBITMQ_ALARMS_URL": "http://guest:s3cret@127.0.0.1:15672/api/health/checks/alarms",
}

// docKubeconfig names every context a command in a sh block uses.
const docKubeconfig = `apiVersion: v1
kind: Config
current-context: default
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: me
  user: {token: t0ken}
contexts:
- name: default
  context: {cluster: local, user: me}
- name: staging
  context: {cluster: local, user: me}
`

// docCommand is a portpatrol command from a sh block, split as sh splits it.
type docCommand struct {
	where string
	args  []string
}

// docCommands finds every command in a sh block that starts with
// "portpatrol --", backslash-continued lines joined.
func docCommands(t *testing.T, files map[string]*mdFile) []docCommand {
	t.Helper()
	var commands []docCommand
	for _, path := range slices.Sorted(maps.Keys(files)) {
		for _, b := range files[path].blocks {
			if b.info != "sh" {
				continue
			}
			for i := 0; i < len(b.lines); i++ {
				start := i
				line := b.lines[i]
				for strings.HasSuffix(line, "\\") && i+1 < len(b.lines) {
					i++
					line = strings.TrimSuffix(line, "\\") + " " + b.lines[i]
				}
				fields := strings.Fields(line)
				if len(fields) < 2 || fields[0] != "portpatrol" || !strings.HasPrefix(fields[1], "--") {
					continue
				}
				where := fmt.Sprintf("%s:%d", path, b.line+1+start)
				args, err := shellWords(line)
				if err != nil {
					t.Errorf("%s: %v: a command that needs the shell belongs in a console block", where, err)
					continue
				}
				commands = append(commands, docCommand{where, args[1:]})
			}
		}
	}
	return commands
}

// shellWords splits one simple command as sh does: quotes and backslashes,
// a # comment, and the end at ; | or &. An expansion is an error.
func shellWords(line string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, word.String()), false
				word.Reset()
			}
			continue
		case c == '#' && !inWord, c == ';' || c == '|' || c == '&' || c == '<' || c == '>':
			i = len(line)
			continue
		case expands(line, i):
			return nil, fmt.Errorf("%q expands something", line[i:])
		case c == '\\' && i+1 < len(line):
			i++
			word.WriteByte(line[i])
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("an unclosed '")
			}
			word.WriteString(line[i+1 : i+1+end])
			i += 1 + end
		case c == '"':
			for i++; i < len(line) && line[i] != '"'; i++ {
				switch {
				case expands(line, i):
					return nil, fmt.Errorf("%q expands something", line[i:])
				case line[i] == '\\' && i+1 < len(line) && strings.IndexByte("$`\"\\", line[i+1]) >= 0:
					i++
				}
				word.WriteByte(line[i])
			}
			if i == len(line) {
				return nil, fmt.Errorf(`an unclosed "`)
			}
		default:
			word.WriteByte(c)
		}
		inWord = true
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

// expands says whether sh expands what starts at line[i]: a backquote, or
// a $ before a name, a digit, a special parameter, { or (. A $ before
// anything else (^OK$) is itself.
func expands(line string, i int) bool {
	if line[i] == '`' {
		return true
	}
	if line[i] != '$' || i+1 == len(line) {
		return false
	}
	c := rune(line[i+1])
	return c == '_' || unicode.IsLetter(c) || unicode.IsDigit(c) || strings.ContainsRune("{(?@*#$!-", c)
}

func TestShellWords(t *testing.T) {
	t.Parallel()
	for line, want := range map[string][]string{
		`portpatrol --a='x|y' --b="Authorization=env:T" c\ d # note`: {"portpatrol", "--a=x|y", "--b=Authorization=env:T", "c d"},
		`portpatrol --x=1 ; echo done`:                               {"portpatrol", "--x=1"},
		`portpatrol "--q=a\"b"`:                                      {"portpatrol", `--q=a"b`},
		`portpatrol --r=^OK$ --s="x$"`:                               {"portpatrol", "--r=^OK$", "--s=x$"},
	} {
		got, err := shellWords(line)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("shellWords(%s) = %q, %v; want %q", line, got, err, want)
		}
	}
	for _, line := range []string{`portpatrol --a=$X`, `portpatrol "--a=${X}"`, "portpatrol --a=`x`", `portpatrol --a=$(x)`, `portpatrol 'x`} {
		if _, err := shellWords(line); err == nil {
			t.Errorf("shellWords(%s) took it", line)
		}
	}
}

// withTestTimeout drops what follows "--" (the command portpatrol would
// run) and any --timeout (the parser takes it once only, a second is exit
// 2), and adds --timeout=1ms.
func withTestTimeout(args []string) []string {
	out := []string{"--timeout=1ms"}
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--":
			return out
		case args[i] == "--timeout":
			i++
		case args[i] == "--probe":
			// Dropped: a probe's start-up error exits 1, which would read
			// here as not ready in time.
		case strings.HasPrefix(args[i], "--timeout="):
		default:
			out = append(out, args[i])
		}
	}
	return out
}

// Every portpatrol command in a sh block parses: run with --timeout=1ms, it
// exits 0 or 1 (ready, or not ready in time), never with a start-up error.
// It runs in a network namespace of its own, with only loopback, so that
// the names in the examples are never asked of a real resolver or host.
func TestDocsShellCommandsParse(t *testing.T) {
	t.Parallel()
	files := docFiles(t)
	commands := docCommands(t, files)
	if len(commands) < 10 {
		t.Fatalf("only %d commands found in sh blocks", len(commands))
	}
	// The check of a second --timeout's treatment that withTestTimeout
	// relies on.
	runPortpatrol(t, nil, "--timeout=1s", "--timeout=1ms", "--tcp.a.address="+closedPort(t)).mustExit(t, 2)

	ns := newNetns(t)
	home := t.TempDir()
	kubeconfig := filepath.Join(home, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(docKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "KUBECONFIG=" + kubeconfig}
	for k, v := range docEnv {
		env = append(env, k+"="+v)
	}
	envRef := regexp.MustCompile(`env:([A-Za-z_][A-Za-z0-9_]*)`)
	for _, c := range commands {
		args := withTestTimeout(c.args)
		for _, m := range envRef.FindAllStringSubmatch(strings.Join(args, " "), -1) {
			if _, ok := docEnv[m[1]]; !ok {
				t.Errorf("%s reads $%s: add a harmless value to docEnv, or put the command in a console block", c.where, m[1])
			}
		}
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns, ppBinary}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		o := runCommand(t, cmd)
		t.Logf("%s: exit %d", c.where, o.code)
		if o.code != 0 && o.code != 1 {
			t.Errorf("%s: portpatrol %s\nexit %d, want 0 or 1 (no start-up error); stderr:\n%s", c.where, strings.Join(c.args, " "), o.code, o.stderr)
		}
	}
}
