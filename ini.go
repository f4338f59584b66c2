package main

import (
	"bufio"
	"bytes"
	"strings"
)

// iniFile maps section names to their keys; keys before any section header
// live in the section named "".
type iniFile map[string]map[string]string

// parseINI reads [section] headers, key = value and key: value lines, and ;
// or # comment lines. Values are trimmed and lose one pair of surrounding
// quotes. A repeated section continues the earlier one; a repeated key wins.
func parseINI(data []byte) (iniFile, error) {
	ini := iniFile{"": {}}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff") // a byte order mark from Windows editors
		}
		switch {
		case line == "" || line[0] == ';' || line[0] == '#':
			continue
		case line[0] == '[':
			if line[len(line)-1] != ']' {
				return nil, errorf("line %d: section header is missing its closing ]", n)
			}
			section = strings.TrimSpace(line[1 : len(line)-1])
			if section == "" {
				return nil, errorf("line %d: empty section name", n)
			}
			if ini[section] == nil {
				ini[section] = map[string]string{}
			}
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			return nil, errorf("line %d: want key = value, key: value or [section]", n)
		}
		key := strings.TrimSpace(line[:i])
		if key == "" {
			return nil, errorf("line %d: missing key before %q", n, line[i])
		}
		ini[section][key] = unquote(strings.TrimSpace(line[i+1:]))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return ini, nil
}

// lookupINI finds Section.Key, or Key in the part before any section. The
// path splits at its first dot, so keys may contain dots but sections not.
func lookupINI(data []byte, path string) (string, error) {
	ini, err := parseINI(data)
	if err != nil {
		return "", err
	}
	section, key, ok := strings.Cut(path, ".")
	if !ok {
		section, key = "", path
	}
	keys, ok := ini[section]
	if !ok {
		return "", errorf("no section [%s]", section)
	}
	v, ok := keys[key]
	if !ok {
		if section == "" {
			return "", errorf("no key %s before the first section (for a key in a section write Section.Key)", quoteString(key))
		}
		return "", errorf("no key %s in section [%s]", quoteString(key), section)
	}
	return v, nil
}
