# Multi-stage: a static, CGO-free binary on a minimal non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/skydeskd ./cmd/skydeskd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/skydeskd /usr/local/bin/skydeskd
COPY skydeskd.example.yaml /etc/skydeskd/skydeskd.yaml
USER nonroot:nonroot
VOLUME /var/lib/skydeskd
# HTTP, HTTPS, DNS, POP3S, POP3, SMTPS, submission, MX
EXPOSE 80 443 53/udp 53/tcp 995 110 465 587 25
ENTRYPOINT ["/usr/local/bin/skydeskd"]
CMD ["serve", "--config", "/etc/skydeskd/skydeskd.yaml"]
