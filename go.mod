module github.com/portpatrol/portpatrol

go 1.26.0

require (
	golang.org/x/net v0.62.0
	gopkg.in/yaml.v3 v3.0.1
)

require golang.org/x/sys v0.49.0
