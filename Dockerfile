# Multi-stage: a static, CGO-free binary on a minimal non-root image.
#   docker build -t skydeskd .
#   docker run -p 443:443 -p 995:995 -p 465:465 -p 587:587 -p 53:53/udp \
#     -v skydeskd-data:/var/lib/skydeskd skydeskd
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/skydeskd ./cmd/skydeskd \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/skydeskd /usr/local/bin/skydeskd
COPY skydeskd.example.yaml /etc/skydeskd/skydeskd.yaml
# The data directory (SQLite file, generated certificate) belongs to the
# unprivileged user the image runs as (uid 65532).
COPY --from=build --chown=65532:65532 /out/data /var/lib/skydeskd
USER 65532:65532
VOLUME /var/lib/skydeskd
# HTTP, HTTPS, DNS, POP3S, POP3, SMTPS, submission, MX. Binding ports below
# 1024 as non-root needs CAP_NET_BIND_SERVICE (docker grants it by default).
EXPOSE 80 443 53/udp 53/tcp 995 110 465 587 25
ENTRYPOINT ["/usr/local/bin/skydeskd"]
CMD ["serve", "--config", "/etc/skydeskd/skydeskd.yaml"]
