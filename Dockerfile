# syntax=docker/dockerfile:1
#
# Usher's image: `usher` as the entrypoint, every role one subcommand away
#   docker run IMAGE ingress | worker --pool booking | dev | setup | dlq list | …
#
# Two stages. The builder compiles the dependencies first, from the manifests alone with
# placeholder sources, so that layer stays cached until Cargo.toml or Cargo.lock change;
# then the real sources. (No cargo-chef: the workspace's members are known and few, and
# this needs no extra tool in the image.) The runtime is distroless (glibc, CA
# certificates, no shell or package manager), running as its non-root user.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /app

# jemalloc, the binary's allocator, is built from source with its configure script and make.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make=4.3-4.1 \
    && rm -rf /var/lib/apt/lists/*

# 1. Dependencies only: every member's manifest, placeholder targets.
COPY Cargo.toml Cargo.lock ./
COPY .cargo/config.toml .cargo/
COPY domain/Cargo.toml domain/
COPY infra/Cargo.toml infra/
COPY ingress/Cargo.toml ingress/
COPY workers/Cargo.toml workers/
COPY lambda/Cargo.toml lambda/
RUN for crate in domain infra ingress workers lambda; do \
        mkdir -p "$crate/src" && touch "$crate/src/lib.rs"; \
    done \
    && mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > lambda/src/main.rs \
    && echo 'fn main() {}' > benches/holds.rs \
    && cargo build --release --locked --bin usher \
    && rm -rf src benches domain/src infra/src ingress/src workers/src lambda/src

# 2. The sources. Cargo rebuilds only the workspace's own crates (their mtimes are newer
# than the placeholders' fingerprints).
COPY . .
RUN touch src/main.rs src/lib.rs domain/src/lib.rs infra/src/lib.rs ingress/src/lib.rs workers/src/lib.rs \
    && cargo build --release --locked --bin usher \
    && mkdir -p /out/data \
    && cp target/release/usher /out/usher

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=builder /out/usher /usr/local/bin/usher
# The embedded backend's data dir (`usher dev` / embedded `usher ingress`); on AWS nothing
# is written (ECS mounts /tmp for USHER_DATA_DIR with a read-only root filesystem).
COPY --from=builder --chown=65532:65532 /out/data /data
ENV USHER_HTTP_ADDR=0.0.0.0:8080 \
    USHER_DATA_DIR=/data
USER 65532:65532
WORKDIR /data
EXPOSE 8080
# `usher health` GETs /health/live on USHER_HTTP_ADDR: distroless has no curl or wget, and
# adding one (plus a shell) for a health probe would grow the image and its attack surface.
# Worker-only containers serve no HTTP: run them with --no-healthcheck (ECS ignores image
# health checks; the ingress task definition declares the same command).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["/usr/local/bin/usher", "health"]
ENTRYPOINT ["/usr/local/bin/usher"]
CMD ["ingress"]
