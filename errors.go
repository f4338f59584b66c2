package main

import "fmt"

// errorf is fmt.Errorf, called out of line: since Go 1.26 fmt.Errorf is
// inlined at each of its 170 call sites here, which made the binary 16 KB
// larger.
//
//go:noinline
func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
