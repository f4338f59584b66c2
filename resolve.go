package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// resolveProperty resolves the value of a property that may be a reference,
// naming the flag in its error.
func resolveProperty(flag, v string) (string, error) {
	r, err := resolve(v)
	if err != nil {
		return "", errorf("%s: %v", flag, err)
	}
	return r, nil
}

// isReference reports whether v names a value to resolve rather than being
// the value itself.
func isReference(v string) bool {
	kind, _, colon := strings.Cut(v, ":")
	if !colon {
		return false // a bare word such as json is a value: X-Format=json
	}
	switch kind {
	case "env", "file", "json", "yaml", "ini":
		return true
	}
	return false
}

// resolve turns a reference such as env:NAME or json:PATH//a.b into its value.
// Anything without a known prefix is returned as written. Errors name the
// source and the missing piece but never the values read.
func resolve(ref string) (string, error) {
	if !isReference(ref) {
		return ref, nil
	}
	kind, rest, _ := strings.Cut(ref, ":")
	if kind == "env" {
		if rest == "" {
			return "", errors.New("env: needs a variable name, e.g. env:DB_HOST")
		}
		v, ok := os.LookupEnv(rest)
		if !ok {
			return "", errorf("environment variable %s is not set", quoteValue(rest))
		}
		// One trailing newline is what a Secret file or echo leaves, never
		// part of a password; more is kept, as written.
		if v, ok := strings.CutSuffix(v, "\n"); ok {
			return strings.TrimSuffix(v, "\r"), nil
		}
		return v, nil
	}

	path, key, hasKey := cutLast(rest, "//")
	path, err := expandPath(path)
	if err != nil {
		return "", err
	}
	if path == "" {
		example := kind + ":/config/app." + kind + "//key"
		if kind == "file" {
			example = "file:/run/secrets/token"
		}
		return "", errorf("%s: needs a file path, e.g. %s", kind, example)
	}
	// Errors name the file as a reference would, kind:path, whatever its kind.
	source := kind + ":" + quoteValue(path)
	if hasKey && key == "" {
		return "", errorf("%s: nothing after //: name the key to read", source)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", errorf("%s: %v", source, unwrapPathError(err))
	}
	// A byte order mark from a Windows editor is not part of any value.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if !hasKey {
		return strings.TrimSpace(string(data)), nil
	}

	var v string
	switch kind {
	case "file":
		v, err = lookupKeyValue(data, key)
	case "json":
		v, err = lookupJSON(data, key)
	case "yaml":
		v, err = lookupYAML(data, key)
	case "ini":
		v, err = lookupINI(data, key)
	}
	if err != nil {
		return "", errorf("%s: %v", source, err)
	}
	return v, nil
}

// cutLast splits at the last sep, so a path may itself contain "//".
func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// expandPath expands $VAR and ${VAR}; an unset variable is an error rather
// than a silently shorter path.
func expandPath(p string) (string, error) {
	var missing []string
	out := os.Expand(p, func(name string) string {
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		for i, m := range missing {
			missing[i] = quoteValue(m)
		}
		return "", errorf("path %s: environment variable %s is not set", quoteValue(p), strings.Join(missing, ", "))
	}
	return out, nil
}

func unwrapPathError(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return pe.Err
	}
	return err
}

// lookupKeyValue reads KEY=VALUE lines as found in .env files.
func lookupKeyValue(data []byte, key string) (string, error) {
	found, value := false, ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return "", errorf("line %d: want KEY=VALUE", n)
		}
		if strings.TrimSpace(k) == key {
			found, value = true, unquote(strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if !found {
		return "", errorf("no key %s", quoteString(key))
	}
	return value, nil
}

// unquote removes one pair of matching surrounding quotes.
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

func lookupJSON(data []byte, path string) (string, error) {
	doc, err := decodeJSON(data, "file")
	if err != nil {
		return "", err
	}
	return lookupPath(doc, path)
}

// decodeJSON reads the one JSON value in a file or body (what). Its errors
// say where, never what is there: the offending byte may be the first of a
// secret.
func decodeJSON(data []byte, what string) (any, error) {
	doc, err := parseJSON(data)
	if se, ok := err.(jsonSyntaxError); ok {
		line := 1 + bytes.Count(data[:se.offset], []byte("\n"))
		return nil, errorf("not valid JSON: syntax error at byte %d (line %d)", se.offset, line)
	}
	switch err {
	case errJSONMore:
		return nil, errorf("not valid JSON: more than one value in the %s", what)
	case errJSONTruncated, errJSONEmpty:
		return nil, errorf("not valid JSON: the %s %v", what, err)
	}
	return doc, nil
}

func lookupYAML(data []byte, path string) (string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return "", yamlError("syntax error", err)
	}
	if doc.Kind != 0 {
		// Decoding checks what parsing alone lets through: duplicate keys,
		// an alias inside its own anchor, excessive aliasing.
		var v any
		if err := doc.Decode(&v); err != nil {
			return "", yamlError("a repeated key or a bad alias", err)
		}
	}
	return lookupPath(yamlTree(&doc), path)
}

// yamlError says where a file is not valid YAML, never what it holds:
// yaml.v3 quotes keys, anchors and values in some messages. Only the line
// number it puts first ("yaml: line 3: ...") is kept.
func yamlError(what string, err error) error {
	return errorf("not valid YAML: %s%s", what, yamlAtLine(err))
}

// yamlAtLine is " at line N" for an error of yaml.v3 that starts with its
// line, else "".
func yamlAtLine(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ") // a *yaml.TypeError's first entry
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		digits, _, _ := strings.Cut(rest, ":")
		if n, err := strconv.Atoi(digits); err == nil {
			return " at line " + strconv.Itoa(n)
		}
	}
	return ""
}

// yamlTree gives a YAML document the shape encoding/json produces, so one
// path walk serves both: string-keyed maps, slices, nil for null. A scalar
// stays its node, so that it comes back as written (1.10, 0755, 2024-01-01)
// rather than as YAML would type it (1.1, 493, a time).
func yamlTree(n *yaml.Node) any {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return yamlTree(n.Content[0])
	case yaml.AliasNode:
		return yamlTree(n.Alias)
	case yaml.SequenceNode:
		list := make([]any, len(n.Content))
		for i, e := range n.Content {
			list[i] = yamlTree(e)
		}
		return list
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		var merges []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			if key.Kind == yaml.AliasNode {
				key = key.Alias
			}
			if key.ShortTag() == "!!merge" {
				merges = append(merges, value)
				continue
			}
			m[key.Value] = yamlTree(value)
		}
		// Keys merged in with <<: fill in what the mapping does not set
		// itself; of several merged mappings, the first wins.
		for _, value := range merges {
			sources := []*yaml.Node{value}
			if value.Kind == yaml.SequenceNode {
				sources = value.Content
			}
			for _, src := range sources {
				merged, _ := yamlTree(src).(map[string]any)
				for k, e := range merged {
					if _, set := m[k]; !set {
						m[k] = e
					}
				}
			}
		}
		return m
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return nil
		}
		return yamlScalar{n}
	}
	return nil
}

// yamlScalar is a YAML scalar leaf; its text is node.Value.
type yamlScalar struct{ *yaml.Node }

// appendJSON writes the scalar inside an object or array returned as JSON:
// numbers as written where JSON allows it (1.10), else as YAML reads them
// (0755 is 493); everything but numbers and booleans as its text.
func (s yamlScalar) appendJSON(b []byte) ([]byte, error) {
	switch s.ShortTag() {
	case "!!int", "!!float":
		if isJSONNumber(s.Value) {
			return append(b, s.Value...), nil
		}
		fallthrough
	case "!!bool":
		var v any
		if err := s.Decode(&v); err != nil {
			return nil, err
		}
		return appendJSON(b, v)
	}
	return appendJSONString(b, s.Value), nil
}

// lookupPath walks a dot path such as servers.0.host through decoded JSON or
// YAML; numeric segments index arrays.
func lookupPath(doc any, path string) (string, error) {
	keys, err := splitPath(path)
	if err != nil {
		return "", err
	}
	v, err := walkPath(doc, keys)
	if err != nil {
		return "", err
	}
	return leafText(v, path)
}

// splitPath cuts a dot path into its keys. A backslash makes the character
// after it part of the key, so that a key holding a dot can be named:
// labels.app\.kubernetes\.io/name.
func splitPath(path string) ([]string, error) {
	var keys []string
	var key []byte
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '\\' && i+1 < len(path):
			i++
			key = append(key, path[i])
		case c == '\\':
			return nil, errorf("path %s ends in a lone backslash (a backslash makes the next character part of a key: a\\.b)", quoteString(path))
		case c == '.':
			keys, key = append(keys, string(key)), key[:0]
		default:
			key = append(key, c)
		}
	}
	keys = append(keys, string(key))
	for i, k := range keys {
		if k == "" && i == 0 {
			return nil, errorf("path %s has an empty segment at its start", quoteString(path))
		}
		if k == "" {
			return nil, errorf("path %s has an empty segment after %s", quoteString(path), quoteString(strings.Join(keys[:i], ".")))
		}
	}
	return keys, nil
}

// walkPath finds the value at keys; its errors name the part of the path
// that could not be followed, never a value.
func walkPath(doc any, keys []string) (any, error) {
	cur := doc
	for i, seg := range keys {
		where, parent, array := quoteString(strings.Join(keys[:i+1], "."))+": ", quoteString(strings.Join(keys[:i], ".")), "the array"
		if i == 0 {
			// The path so far is empty (not `""`), and the path to here
			// is the key alone, which the reason names anyway.
			where, parent, array = "", "the top level", "the top-level array"
		}
		switch node := cur.(type) {
		case map[string]any:
			next, ok := node[seg]
			if !ok {
				return nil, errorf("no key %s", quoteString(strings.Join(keys[:i+1], ".")))
			}
			cur = next
		case []any:
			idx, err := strconv.Atoi(seg)
			if err != nil || idx < 0 {
				return nil, errorf("%s%s is an array, index it with a number, not %s", where, parent, quoteString(seg))
			}
			if idx >= len(node) {
				last := "is empty"
				if len(node) > 0 {
					last = "ends at index " + strconv.Itoa(len(node)-1)
				}
				return nil, errorf("%sindex %d is out of range (%s %s)", where, idx, array, last)
			}
			cur = node[idx]
		default:
			return nil, errorf("%s%s is a single value, it has no key %s", where, parent, quoteString(seg))
		}
	}
	return cur, nil
}

func leafText(v any, path string) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", errorf("%s is null", quoteString(path))
	case string:
		return v, nil
	case yamlScalar:
		return v.Value, nil
	case jsonNumber:
		return string(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	}
	b, err := appendJSON(nil, v)
	if err != nil {
		return "", errorf("%s: cannot be written as JSON", quoteString(path)) // the error may quote a value
	}
	return string(b), nil
}
