// kcl/mld_records_avx2.hpp - the fast path of message_parser: a processRecords line read in one pass
// over simdjson's structural index, compiled for AVX2 (internal to shardflow::kcl; not part of the
// library's interface).
//
// Why: the DOM reading costs simdjson's stage 1 (the structural index, dispatched at run time to the
// CPU's best kernel), stage 2 (the tape, every string copied) and then mld_protocol.cpp's pass over the
// fields. The fast path keeps stage 1 (the same dispatched kernel) and replaces the other two by one
// walk that checks the grammar of a processRecords line and views the strings in the line. simdjson
// On-Demand was measured first (session 15): Debian's simdjson 3.0.1 compiles its iteration for the
// kernel the translation unit's flags allow, and even compiled for haswell its walk was slower on
// the wall clock than the DOM's stage 2 plus the field pass (2,450 against 3,300 MB/s), so it is not
// used. The walk's string scans use AVX2 and BMI1, so kcl/mld_records_avx2.cpp is compiled with
// -mavx2 -mbmi and message_parser calls it only when the CPU has both (mld_protocol.cpp).
//
// The hazard, and how kcl/CMakeLists.txt removes it: every inline function and template instance
// that file uses (simdjson's, std::vector's, ...) would be emitted as a weak COMDAT symbol with AVX2
// instructions, and the linker may pick that copy for the other translation units too, which would
// then die of SIGILL on a CPU without AVX2. The build therefore links the file's object with
// `ld -r`, makes every symbol but `shardflow_mld_records_avx2` local and drops the COMDAT groups
// (objcopy), and refuses the result (kcl/avx2_object.sh) if it still has another global or weak
// symbol, a COMDAT group, or code that runs without being called (.init_array, .ctors, ...). What
// crosses the boundary is this header: plain C structs and function pointers, no C++ type.
//
// The contract: the function reads one line and either vouches for its reading (returns 1: the line
// is a valid JSON processRecords message and the records it reported are exactly what the DOM reading
// in mld_protocol.cpp would make of it) or declines (returns 0), and the caller forgets what it was
// given and parses the line with the DOM. It declines whatever it cannot vouch for: another action,
// a backslash in any string or key, a number that is not a non-negative int64 without leading zeros,
// an object or array other than the records, a repeated top-level key, a record without a
// sequenceNumber string, text after the object, any stage-1 error. It allocates (stage 1's index,
// kept between calls) and never throws; a failed allocation declines. tests/kcl/mld_protocol_test.cpp
// compares it with the DOM reading over the fuzz corpus and its mutations.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

/// One record as the fast path read it; the texts view the line.
struct shardflow_mld_avx2_record {
  const char* data;
  std::size_t data_size;
  const char* partition_key;
  std::size_t partition_key_size;
  const char* sequence_number;
  std::size_t sequence_number_size;
  std::uint64_t sub_sequence_number;
  std::int64_t arrival_ms;
  bool data_null;
  bool has_partition_key;
  bool has_sub_sequence_number;
  bool has_arrival_ms;
};

/// One call: release the parser (`line` null) or read `line`.
struct shardflow_mld_avx2_call {
  /// The fast path's parser, made on the first read and kept between calls; freed by a release.
  void* parser;
  /// The line and the readable bytes from its start (at least `size` + 64).
  const char* line;
  std::size_t size;
  std::size_t capacity;
  /// Called once per record, in order.
  void (*add)(void* owner, const shardflow_mld_avx2_record* record);
  void* owner;
  /// Out: `millisBehindLatest`.
  std::int64_t millis_behind_latest;
  bool has_millis_behind_latest;
};

/// Reads `call->line` (see the contract above) or releases `call->parser`. Returns 1 when it vouches
/// for the reading, 0 otherwise. Only call it when the CPU has AVX2 and BMI1 (what the object is
/// built for: -mavx2 -mbmi; message_parser checks both).
int shardflow_mld_records_avx2(shardflow_mld_avx2_call* call);
}
