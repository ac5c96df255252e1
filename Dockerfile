# pinstream: build in one stage, run from a slim image. RocksDB is Debian's
# (librocksdb-dev to build, librocksdb7.8 to run; see .cargo/config.toml).
#   docker build -t pinstream .
#   docker run --rm -v "$PWD/archive:/archive" pinstream replay --archive /archive
#   docker run --rm -p 8082:8082 pinstream demo --http 0.0.0.0:8082   # HTTP API on the host's 8082
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libclang-dev librocksdb-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/pinstream

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates librocksdb7.8 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/pinstream /usr/local/bin/pinstream
COPY topologies /etc/pinstream/topologies
WORKDIR /var/lib/pinstream
VOLUME ["/var/lib/pinstream/state"]
# The HTTP API (run, demo); it binds 127.0.0.1 unless --http 0.0.0.0:8082 is given.
EXPOSE 8082
ENTRYPOINT ["pinstream"]
CMD ["--help"]
