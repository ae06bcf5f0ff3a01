# syntax=docker/dockerfile:1
#
# docker build --build-arg VERSION=$(git describe --tags --always) -t h2cgw .
# docker run --rm -p 8080:8080 h2cgw
#
# The admin listener (/metrics, /healthz, /readyz) stays on the container's
# loopback by default, which is enough for the HEALTHCHECK below. For probes
# or scrapes from outside the container (Kubernetes, Prometheus) publish it:
# docker run --rm -p 8080:8080 -p 9901:9901 h2cgw --admin-listen :9901

# The newest Go release line; the floating tag brings its newest patch
# release, at or above the floor the binary checks at start-up (README
# "Supported Go versions"). The image's GOTOOLCHAIN=local keeps that
# toolchain: go.mod's toolchain line (go1.27.4) is never newer than it.
ARG GO_VERSION=1.27

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
# Static (no cgo: the final image has no libc), reproducible paths, version
# stamped into main.version.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/h2cgw ./cmd/h2cgw

# No shell, no package manager, runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/h2cgw /usr/local/bin/h2cgw
USER nonroot:nonroot
EXPOSE 8080 9901
# No curl in the image: the binary checks itself. It needs the admin
# listener on port 9901 of the loopback (the default, or --admin-listen :9901).
HEALTHCHECK --interval=10s --timeout=6s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/h2cgw", "healthcheck", "http://127.0.0.1:9901/healthz"]
ENTRYPOINT ["/usr/local/bin/h2cgw"]
