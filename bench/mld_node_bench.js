// bench/mld_node_bench.js - the baseline of bench/mld_node_bench.cpp: a record processor on the
// official Node KCL (aws-kcl) that decodes every record's data and checkpoints each batch at its
// last record (null at the shard end), as a minimal real worker does.
'use strict';

const kcl = require(process.env.BENCH_AWS_KCL || 'aws-kcl');

let bytes = 0;
const done = (callback) => (err) => {
  if (err) process.stderr.write(`mld_node_bench.js: checkpoint failed: ${err}\n`);
  callback();
};

kcl({
  initialize(input, callback) { callback(); },
  processRecords(input, callback) {
    const records = input.records || [];
    if (records.length === 0) return callback();
    for (const r of records) bytes += Buffer.from(r.data, 'base64').length;
    input.checkpointer.checkpoint(records[records.length - 1].sequenceNumber, done(callback));
  },
  leaseLost(input, callback) { callback(); },
  shardEnded(input, callback) { input.checkpointer.checkpoint(done(callback)); },
  shutdownRequested(input, callback) { input.checkpointer.checkpoint(done(callback)); },
}).run();
