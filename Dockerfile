# Multi-stage build: the release command in a Go builder, then an image that
# holds nothing but the static binary and the CA bundle, running as nonroot.
#   docker build --build-arg VERSION=v1.2.3 -t portpatrol .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY *.go ./
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH=amd64
# Keep in lockstep with the release command in README.md and ko.yaml.
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -buildvcs=auto -tags nethttpomithttp2 -gcflags=crypto/tls=-l -gcflags=crypto/x509=-l -gcflags=math/big=-l -gcflags=regexp/syntax=-l -gcflags=gopkg.in/yaml.v3=-l -ldflags="-s -w -X main.version=${VERSION}" -o portpatrol .

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /src/portpatrol /portpatrol
USER 65532:65532
ENTRYPOINT ["/portpatrol"]
