# syntax=docker/dockerfile:1
# The DataMind core gateway image: a release build of `datamind-gateway` on a minimal,
# non-root Debian runtime. Build from the repository root:
#   docker build -t datamind/gateway:0.1.0 .
# The Helm chart (charts/datamind) mounts the config at /etc/datamind/gateway.yaml.

# === build ===
FROM rust:1.95-bookworm AS build
# Pingora's zlib-ng build needs cmake. Debian packages are not pinned (DL3008): the base
# image tag pins the release, and superseded versions leave the archive.
# hadolint ignore=DL3008
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
# The default config (built-in mock provider, demo key) listening on all interfaces, so
# `docker run -p 8080:8080 -p 9090:9090 IMAGE` works; the chart mounts its own config.
RUN sed -e 's/"127\.0\.0\.1:/"0.0.0.0:/' config/gateway.yaml > /out/gateway.yaml \
 && grep -q '"0.0.0.0:8080"' /out/gateway.yaml

# === runtime ===
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/datamind-gateway /usr/local/bin/datamind-gateway
COPY --from=build /out/gateway.yaml /etc/datamind/gateway.yaml
USER 65532:65532
# API listener and admin listener (/healthz, /readyz, /metrics) in the chart's config.
EXPOSE 8080 9090
# SIGTERM drains in-flight requests for server.shutdown_grace_seconds, then exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/datamind-gateway"]
CMD ["--config", "/etc/datamind/gateway.yaml"]
