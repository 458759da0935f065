# whistled and the whistle CLI, built from this repository (see docker-compose.yml).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/whistled ./cmd/whistled \
 && CGO_ENABLED=0 go build -trimpath -o /out/whistle ./cmd/whistle

FROM debian:bookworm-slim
# CA certificates for TLS to EventStoreDB or NATS signed by a public CA; a
# private CA is given with the connection string (tlsCAFile=...).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir /data && chown 65532:65532 /data
COPY --from=build /out/whistled /out/whistle /usr/local/bin/
USER 65532:65532
# The data folder (principals, read model state, and the embedded event
# store when no external one is configured); a new named volume takes its
# owner from here.
VOLUME /data
ENV WHISTLE_DATA=/data WHISTLE_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/whistled"]
