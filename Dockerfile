# A static ferry binary in an image of its own:
#   docker build -t ferry .
#   docker run -p 2121:2121 -p 50000-50099:50000-50099 -v ferry-data:/data ferry
# Behind Docker's NAT, passive replies must name an address clients reach:
# add --public-host HOST (or public_host in /data/ferry.toml with --config).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /ferry ./cmd/ferry \
 && mkdir -p /data && chown 65532:65532 /data

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /ferry /ferry
COPY --from=build --chown=65532:65532 /data /data
USER 65532:65532
VOLUME /data
EXPOSE 2121 50000-50099
ENTRYPOINT ["/ferry"]
CMD ["serve", "--data-dir", "/data", "--listen", ":2121", "--passive-ports", "50000-50099"]
