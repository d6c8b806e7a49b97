# Multi-stage build: compile with the Rust toolchain, run on a small Debian
# image as a non-root user. Every step also runs outside Docker:
#   cargo build --release --locked && ./target/release/sluice run -c config/container.toml
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY config ./config
COPY benches ./benches
COPY tests ./tests
RUN cargo build --release --locked --bin sluice \
 && ./target/release/sluice --version

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/sluice --create-home sluice
COPY --from=build /src/target/release/sluice /usr/local/bin/sluice
COPY config/container.toml /etc/sluice/sluice.toml
RUN sluice --version && sluice check -c /etc/sluice/sluice.toml
USER sluice
WORKDIR /var/lib/sluice
VOLUME ["/var/lib/sluice"]
# 5514: syslog UDP and TCP; 5515: log4j 1.2 over UDP; 5516: log4j2 over TCP; 6514:
# syslog over TLS (the TLS listener, commented in config/container.toml: mount
# certificates and enable it); 9901: admin (/metrics, /health).
EXPOSE 5514/udp 5514/tcp 5515/udp 5516/tcp 6514 9901
# `sluice health` asks GET /health at the [admin] listen address of the config
# it is given (0.0.0.0 is asked on 127.0.0.1): 0 on 200 (ok or degraded).
HEALTHCHECK --interval=15s --timeout=3s CMD ["sluice", "health", "-c", "/etc/sluice/sluice.toml"]
ENTRYPOINT ["sluice"]
CMD ["run", "-c", "/etc/sluice/sluice.toml"]
