// tests/peers/dynalite_guard.js - keeps dynalite up when a client vanishes mid-request.
//
// Contract: preloaded into dynalite (`node --require THIS dynalite/cli.js ...`). dynalite 4.0.0
// throws from a request's 'error' handler, so a client that dies with a request open (a daemon
// killed by the kill9 scenario, or one that exits after its worker failed) ends dynalite, and with
// it every lease table of the run. This logs such an abort (ECONNRESET) and goes on; any other
// uncaught error still ends the process (exit 1) after printing it.
'use strict';

process.on('uncaughtException', (err) => {
  if (err && err.code === 'ECONNRESET') {
    process.stderr.write(`dynalite_guard: a client aborted its request (${err.message}): ignored\n`);
    return;
  }
  process.stderr.write(`dynalite_guard: ${(err && err.stack) || err}\n`);
  process.exit(1);
});
