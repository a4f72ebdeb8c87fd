# lookout container image. `make image` builds it with podman, buildah or docker; README.md ("Install")
# has the build-and-push steps, deploy/kubernetes/ runs it, tests/packaging/image.sh tests it.
# The build stage compiles lookout and packs it as the Debian package (`make deb`); the runtime stage
# installs that package on bookworm-slim, so it gets exactly the runtime libraries the package's Depends
# names (computed by dpkg-shlibdeps from the binary), and no compiler or -dev package.

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config libyaml-dev libjansson-dev libmicrohttpd-dev libpcre2-dev \
      libcurl4-openssl-dev libssl-dev libc-ares-dev libsqlite3-dev libpq-dev libmariadb-dev zlib1g-dev \
      dpkg-dev binutils procps adduser \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make clean >/dev/null && make -j"$(nproc)" WERROR=1 deb

FROM debian:bookworm-slim
# A fixed uid/gid, so that Kubernetes' runAsNonRoot can check it and volumes can be chowned to it; the
# package's postinst finds the user and keeps it.
RUN groupadd --system --gid 10001 lookout \
 && useradd --system --uid 10001 --gid lookout --home-dir /var/lib/lookout --no-create-home \
      --shell /usr/sbin/nologin lookout \
 && install -d -o lookout -g lookout -m 0750 /var/lib/lookout
COPY --from=build /src/lookout_*.deb /tmp/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates /tmp/lookout_*.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/lookout_*.deb
USER 10001:10001
WORKDIR /var/lib/lookout
EXPOSE 7777
VOLUME /var/lib/lookout
# /etc/lookout/lookout.yml is the package's default (it scrapes lookout itself); mount your own there.
# Arguments after the image name are appended: a later --storage.path or --config.file wins.
ENTRYPOINT ["/usr/bin/lookout", "--config.file=/etc/lookout/lookout.yml", "--storage.path=/var/lib/lookout"]
