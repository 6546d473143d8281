# syntax=docker/dockerfile:1
# The DataMind core gateway image: a release build of `datamind-gateway` on a minimal,
# non-root Debian runtime. Build from the repository root:
#   docker build -t datamind/gateway:0.1.0 .
# The Helm chart (charts/datamind) mounts the config at /etc/datamind/gateway.yaml.

# === build ===
FROM rust:1.95-bookworm AS build
# Pingora's zlib-ng build needs cmake.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole workspace: every member's manifest must be present for cargo to resolve it.
COPY Cargo.toml Cargo.lock clippy.toml ./
COPY gateway gateway
COPY benches benches
COPY tests tests
COPY config config
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p datamind-gateway \
 && install -D -m 0755 target/release/datamind-gateway /out/datamind-gateway

# === runtime ===
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/datamind-gateway /usr/local/bin/datamind-gateway
# The default config works with no external service (built-in mock provider); the chart
# replaces it with a ConfigMap. It listens on loopback, so containers override the listeners.
COPY --chown=0:0 config/gateway.yaml /etc/datamind/gateway.yaml
USER 65532:65532
# API listener and admin listener (/healthz, /readyz, /metrics) in the chart's config.
EXPOSE 8080 9090
# SIGTERM drains in-flight requests for server.shutdown_grace_seconds, then exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/datamind-gateway"]
CMD ["--config", "/etc/datamind/gateway.yaml"]
