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
