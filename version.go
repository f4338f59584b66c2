package main

import "runtime/debug"

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// versionString falls back to the module version that go install records
// when no version was set at build time.
func versionString() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}
