# Dockerfile - the jobmill images: one builder, three runtime targets.
#
#   scripts/images                      builds all three with podman (no registry needed)
#   podman build --format docker --target worker -t localhost/jobmill-worker:dev .
#
# Stages:
#   builder   debian:bookworm with the -dev packages and cmake; compiles the
#             services and jobmill-probe into /out, stripped
#   tested    with --build-arg JOBMILL_TESTS=on, the unit and integration
#             tests against that build (a failing test fails the build); by
#             default (off) nothing runs
#   runtime   debian:bookworm-slim with the runtime libraries only, the
#             jobmill-probe health checker and the user 10001:10001
#   api, worker, janitor   runtime + one binary, which is the entrypoint
#
# Every target runs as 10001:10001 and works with a read-only root file
# system; nothing writes to disk (exec handlers that write files need a
# writable /tmp, e.g. a tmpfs). HEALTHCHECK runs jobmill-probe against
# /healthz on the address the service listens on (JOBMILL_LISTEN or
# JOBMILL_METRICS_LISTEN); keep --format docker, the OCI format drops it.
FROM debian:bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      gcc libc6-dev make cmake pkg-config \
      libhiredis-dev libcivetweb-dev libjansson-dev libyaml-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY libshared/ libshared/
COPY services/ services/
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
 && cmake --build /build -j"$(nproc)" \
 && mkdir /out \
 && cp /build/bin/jobmill-api /build/bin/jobmill-worker /build/bin/jobmill-janitor \
       /build/bin/jobmill-probe /out/ \
 && strip /out/*

FROM builder AS tested
ARG JOBMILL_TESTS=off
COPY tests/ tests/
RUN if [ "$JOBMILL_TESTS" = on ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends libcriterion-dev redis-server python3 prometheus \
      && rm -rf /var/lib/apt/lists/* \
      && cmake -S . -B /build -DBUILD_TESTING=ON \
      && cmake --build /build -j"$(nproc)" \
      && cd /build && ctest -L 'unit|integration' --output-on-failure -j"$(nproc)"; \
    fi

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libhiredis0.14 libcivetweb1 libjansson4 libyaml-0-2 tzdata \
 && rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log /var/cache/debconf/*-old \
 && groupadd --gid 10001 jobmill \
 && useradd --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin jobmill
COPY --from=tested /out/jobmill-probe /usr/local/bin/
USER 10001:10001
STOPSIGNAL SIGTERM
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=
ARG LICENSES=NOASSERTION
LABEL org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.source="$SOURCE" \
      org.opencontainers.image.licenses="$LICENSES" \
      org.opencontainers.image.description="jobmill, a distributed job queue on Redis"

FROM runtime AS api
COPY --from=tested /out/jobmill-api /usr/local/bin/
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/jobmill-probe", "-e", "JOBMILL_LISTEN", "0.0.0.0:8080"]
LABEL org.opencontainers.image.title="jobmill-api"
ENTRYPOINT ["/usr/local/bin/jobmill-api"]

FROM runtime AS worker
COPY --from=tested /out/jobmill-worker /usr/local/bin/
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/jobmill-probe", "-e", "JOBMILL_METRICS_LISTEN", "0.0.0.0:9090"]
LABEL org.opencontainers.image.title="jobmill-worker"
ENTRYPOINT ["/usr/local/bin/jobmill-worker"]

FROM runtime AS janitor
COPY --from=tested /out/jobmill-janitor /usr/local/bin/
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/jobmill-probe", "-e", "JOBMILL_METRICS_LISTEN", "0.0.0.0:9090"]
LABEL org.opencontainers.image.title="jobmill-janitor"
ENTRYPOINT ["/usr/local/bin/jobmill-janitor"]
