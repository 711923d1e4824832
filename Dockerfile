# switchd in a container (docs/operations.md "Installing").
#   docker build -t cardswitch .
#   docker run -v switchd-data:/var/lib/switchd -v /etc/cardswitch:/etc/cardswitch:ro \
#     -p 8583:8583 -p 9583:9583 cardswitch --config /etc/cardswitch/switchd.yaml
# The configuration must listen on 0.0.0.0 inside the container, keep
# data_dir under /var/lib/switchd and lmk.file outside it.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# A static binary: no cgo, nothing to link at run time.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/switchd ./cmd/switchd && \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/switchctl ./cmd/switchctl && \
    mkdir -p /out/var/lib/switchd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/switchd /out/switchctl /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/var/lib/switchd /var/lib/switchd
USER 65532:65532
WORKDIR /var/lib/switchd
VOLUME /var/lib/switchd
EXPOSE 8583 8584 9583
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/switchd"]
