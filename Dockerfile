# syntax=docker/dockerfile:1
# The `windlass` binary in a small non-root image.
#
#   docker build -t windlass:latest .
#
# librdkafka is compiled from source by rdkafka-sys's build script (make + a C/C++ compiler)
# and links the system OpenSSL and zlib; the external scaler's protobuf is compiled by protox,
# so no protoc is needed.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential pkg-config libssl-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the build between image builds; the binary is copied out
# of the cached target directory before the mount goes away. The runtime image has glibc,
# libgcc, OpenSSL and CA certificates but no zlib, so zlib is copied out too.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p windlass-operator --bin windlass \
    && install -D -m 0755 target/release/windlass /out/windlass \
    && install -D -m 0644 "$(readlink -f /usr/lib/$(gcc -print-multiarch)/libz.so.1)" /out/lib/libz.so.1

# distroless/cc: glibc, libgcc, libssl3, CA certificates, no shell; `nonroot` runs as 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/lib/libz.so.1 /usr/lib/libz.so.1
COPY --from=builder /out/windlass /usr/local/bin/windlass
USER 65532:65532
EXPOSE 6443 8080 8081
ENTRYPOINT ["/usr/local/bin/windlass"]
CMD ["operator"]
