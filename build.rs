//! Build script: when RocksDB comes from the system (`ROCKSDB_LIB_DIR`, set
//! in `.cargo/config.toml` for Debian's librocksdb-dev), compile the small
//! C++ shim `native/rocksdb_compat.cc` that supplies the one C API function
//! that RocksDB 7.8 lacks. With `ROCKSDB_COMPILE=1` librocksdb-sys builds
//! RocksDB from source (it has the function) and nothing is compiled here.
use std::env;

fn main() {
    println!("cargo:rerun-if-changed=native/rocksdb_compat.cc");
    println!("cargo:rerun-if-env-changed=ROCKSDB_LIB_DIR");
    println!("cargo:rerun-if-env-changed=ROCKSDB_COMPILE");
    println!("cargo:rerun-if-env-changed=ROCKSDB_INCLUDE_DIR");
    let compile = env::var("ROCKSDB_COMPILE")
        .map(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        .unwrap_or(false);
    if env::var_os("ROCKSDB_LIB_DIR").is_none() || compile {
        return;
    }
    let mut build = cc::Build::new();
    build.cpp(true).std("c++17").file("native/rocksdb_compat.cc");
    if let Some(dir) = env::var_os("ROCKSDB_INCLUDE_DIR") {
        build.include(dir);
    }
    build.compile("pinstream_rocksdb_compat");
}
