// The C API functions pinstream links that Debian's RocksDB (bookworm's
// librocksdb 7.8) lacks. The one it calls: an atomic flush of several column families
// (`rocksdb_flush_cfs`, in RocksDB's C API since 8.x). A replay writes with
// the WAL off and makes its state durable with one atomic flush of every
// column family, so that the positions (column family `meta`) and the state
// they produced reach disk together or not at all; flushing them one by one
// would not be atomic. The other: rust-rocksdb's Options drop glue names
// rocksdb_write_buffer_manager_destroy (a write buffer manager is never set
// here, so it is never called; it is defined for the link, and correctly).
//
// Built by build.rs only when linking a system RocksDB (ROCKSDB_LIB_DIR set),
// against that RocksDB's own headers. The structs mirror db/c.cc's: each
// holds the C++ object (or a pointer to it) as its first member, which is
// all this reads. With a RocksDB that has its own rocksdb_flush_cfs, the
// executable's definition (this one) does the same thing.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_buffer_manager.h>

struct rocksdb_t {
  rocksdb::DB* rep;
};
struct rocksdb_flushoptions_t {
  rocksdb::FlushOptions rep;
};
struct rocksdb_column_family_handle_t {
  rocksdb::ColumnFamilyHandle* rep;
};
struct rocksdb_write_buffer_manager_t {
  std::shared_ptr<rocksdb::WriteBufferManager> rep;
};

extern "C" void rocksdb_write_buffer_manager_destroy(
    rocksdb_write_buffer_manager_t* wbm) {
  delete wbm;
}

extern "C" void rocksdb_flush_cfs(rocksdb_t* db,
                                  const rocksdb_flushoptions_t* options,
                                  rocksdb_column_family_handle_t** cfs,
                                  int n, char** errptr) {
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  handles.reserve(n);
  for (int i = 0; i < n; i++) handles.push_back(cfs[i]->rep);
  rocksdb::Status s = db->rep->Flush(options->rep, handles);
  if (s.ok()) return;
  if (*errptr != nullptr) free(*errptr);
  *errptr = strdup(s.ToString().c_str());
}
