#!/usr/bin/env bash
# Builds the release binary and the floor programs, then prints each measure
# beside what it is compared with, its budget, and PASS or MISS, with a count
# at the end. Figures only: nothing here fails a build. The budgets are
# ratios against floors measured in the same run, so a slower machine moves
# both sides alike.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p dist
CGO_ENABLED=0 go build -trimpath -buildvcs=auto -tags nethttpomithttp2 -gcflags=crypto/tls=-l -gcflags=crypto/x509=-l -gcflags=math/big=-l -gcflags=regexp/syntax=-l -gcflags=gopkg.in/yaml.v3=-l -ldflags="-s -w -X main.version=bench" -o dist/portpatrol .
CGO_ENABLED=0 go build -trimpath -buildvcs=auto -tags nethttpomithttp2 -ldflags="-s -w -X main.version=bench" -o dist/portpatrol-plain .
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o dist/dialonce ./scripts/floor/dialonce
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o dist/dialmany ./scripts/floor/dialmany
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o dist/maxrss ./scripts/bench/maxrss
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o dist/poller ./scripts/floor/poller
CGO_ENABLED=0 go build -trimpath -tags nethttpomithttp2 -ldflags="-s -w" -o dist/imports ./scripts/floor/imports
go run ./scripts/bench -portpatrol dist/portpatrol -portpatrol-plain dist/portpatrol-plain -dialonce dist/dialonce -dialmany dist/dialmany -maxrss dist/maxrss -poller dist/poller -imports dist/imports "$@"
