// compose-check loads a compose file with the compose specification's own
// Go loader (github.com/compose-spec/compose-go), which validates it against
// the schema and checks that it is consistent (depends_on names a service).
// It prints the loaded project as JSON on stdout and exits 0, or prints the
// error on stderr and exits 1.
//
//	compose-check FILE
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check FILE")
		os.Exit(2)
	}
	file := os.Args[1]
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithName("check"),
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithConsistency(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(append(out, '\n'))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compose-check:", err)
	os.Exit(1)
}
