// tests/peers/node_worker.js - the control worker of the peers stage, on the official Node KCL (aws-kcl).
//
// Contract: the daemon starts it per shard (executableName = node THIS). Each record's data is
// appended, decoded, as one line to $PEERS_OUT/node-<shardId>.txt before the batch is checkpointed
// at its last record; shardEnded and shutdownRequested checkpoint (null at shard end, the latest
// record otherwise); leaseLost only acknowledges. It lets the stage prove the harness with a worker
// that is not shardflow: when it fails, the harness or the emulators are wrong.
'use strict';

const fs = require('fs');
const path = require('path');
const kcl = require(process.env.PEERS_AWS_KCL || 'aws-kcl');

const out = process.env.PEERS_OUT;
let file = null;

function done(callback) {
  return (err) => {
    if (err) process.stderr.write(`node_worker: checkpoint failed: ${err}\n`);
    callback();
  };
}

const processor = {
  initialize(input, callback) {
    file = path.join(out, `node-${input.shardId}.txt`);
    callback();
  },
  processRecords(input, callback) {
    const records = input.records || [];
    if (records.length === 0) return callback();
    const lines = records.map((r) => Buffer.from(r.data, 'base64').toString('utf8') + '\n');
    fs.appendFileSync(file, lines.join(''));
    const last = records[records.length - 1].sequenceNumber;
    input.checkpointer.checkpoint(last, done(callback));
  },
  leaseLost(input, callback) { callback(); },
  shardEnded(input, callback) { input.checkpointer.checkpoint(done(callback)); },
  shutdownRequested(input, callback) { input.checkpointer.checkpoint(done(callback)); },
};

kcl(processor).run();
