#!/usr/bin/env bash
# The Dockerfile's runtime stage installs a Debian package for every shared
# library the built binary needs (DT_NEEDED), runs as a non-root user and
# has readmodel as its entrypoint, and carries the OCI annotations (title,
# description, version, revision, created, source) with its version equal
# to the project's and the chart's appVersion. No container engine runs
# here, so this is what can be checked without building the image.
# Usage: check_dockerfile.sh DOCKERFILE BINARY
set -euo pipefail
dockerfile=${1:?Dockerfile} bin=${2:?binary}
runtime=$(awk '/^FROM /{stage++} stage==2' "$dockerfile")
[ -n "$runtime" ] || { echo "no runtime stage (second FROM)"; exit 1; }
fail=0
for lib in $(readelf -d "$bin" | awk '/NEEDED/{gsub(/[][]/,"",$5); print $5}'); do
  case "$lib" in libasan.* | libubsan.*) continue ;; esac # sanitizer builds of the tests
  path=$(ldd "$bin" | awk -v l="$lib" '$1==l{print $3}')
  pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "/usr$path" 2>/dev/null || true)
  pkg=${pkg%%:*}
  [ "$pkg" = libc6 ] && continue # in every Debian image
  if [ -z "$pkg" ] || ! grep -qw -- "$pkg" <<<"$runtime"; then
    echo "runtime stage does not install ${pkg:-the package} for $lib"
    fail=1
  fi
done
grep -Eq '^USER [1-9][0-9]*' <<<"$runtime" || { echo "runtime stage must run as a numeric non-root USER"; fail=1; }
grep -q '^ENTRYPOINT \["/usr/local/bin/readmodel"\]' <<<"$runtime" || { echo "ENTRYPOINT is not readmodel"; fail=1; }
grep -q 'COPY --from=build /out/bin/readmodel /usr/local/bin/readmodel' <<<"$runtime" || { echo "binary not copied from the build stage's install prefix"; fail=1; }
build=$(awk '/^FROM /{stage++} stage==1' "$dockerfile")
grep -q 'cmake --install build --prefix /out' <<<"$build" || { echo "build stage does not install with cmake --install"; fail=1; }
# OCI annotations (labels) of the runtime stage, from build arguments
for key in title description version revision created source; do
  grep -q "org.opencontainers.image.$key=" <<<"$runtime" || { echo "runtime stage has no label org.opencontainers.image.$key"; fail=1; }
done
for arg in VERSION REVISION CREATED; do
  grep -q "^ARG $arg" <<<"$runtime" || { echo "runtime stage has no ARG $arg"; fail=1; }
done
# the image's default version is the project's and the chart's appVersion
# (the chart's default image tag)
src=$(dirname "$dockerfile")
version=$(sed -n 's/^project(readmodel VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
app=$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' "$src/deploy/helm/readmodel/Chart.yaml")
grep -qx "ARG VERSION=$version" <<<"$runtime" || { echo "ARG VERSION default is not the project version $version"; fail=1; }
[ "$app" = "$version" ] || { echo "the chart's appVersion $app is not the project version $version"; fail=1; }
[ "$fail" = 0 ] && echo "Dockerfile runtime stage: ok"
exit "$fail"
