# readmodel container image: build on Debian bookworm, run on bookworm-slim
# with only the shared libraries the binary links (checked by
# tests/deploy/check_dockerfile.sh against the binary's DT_NEEDED entries).
# Not built in this repository's CI: no container engine runs there.

FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      librdkafka-dev libhiredis-dev libcurl4-openssl-dev libjansson-dev libroaring-dev \
      libmicrohttpd-dev \
      libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY include include
COPY src src
COPY bench bench
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
 && cmake --build build --target readmodel -j"$(nproc)" \
 && cmake --install build --prefix /out --strip

FROM debian:bookworm-slim
# Image metadata as OCI annotations (labels with the
# org.opencontainers.image keys), given at build time (README, "Container
# image"): VERSION is the project's version (CMakeLists.txt, the chart's
# appVersion and the image tag), REVISION the git commit, CREATED the build
# time in RFC 3339.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="readmodel" \
      org.opencontainers.image.description="Keeps Redis availability bitmaps and an OpenSearch index in step with the booking event log" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://example.invalid/readmodel" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
# RUNTIME-PACKAGES (read by the test): one per DT_NEEDED library, plus CA certificates for TLS
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      librdkafka1 libhiredis0.14 libcurl4 libmicrohttpd12 libroaring0 libjansson4 ca-certificates \
      libssl3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/bin/readmodel /usr/local/bin/readmodel
# Numeric user so Kubernetes can verify runAsNonRoot; nothing is written
# outside /tmp, so the root filesystem can be read-only.
USER 10001:10001
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/readmodel"]
CMD ["--help"]
