FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/whistled ./cmd/whistled && CGO_ENABLED=0 go build -o /out/whistle ./cmd/whistle

FROM debian:bookworm-slim
COPY --from=build /out/whistled /out/whistle /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/whistled"]
