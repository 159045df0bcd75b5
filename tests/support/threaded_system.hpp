// tests/support/threaded_system.hpp - an actor system on real threads (two scheduler threads, CAF's
// console log quiet, shardflow's error category registered), for the few tests that need real
// concurrency rather than the deterministic scheduler (deterministic_fixture.hpp).
#pragma once

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

#include <shardflow/actors/messages.hpp>

namespace shardflow::testing {

struct threaded_system {
  caf::actor_system_config cfg;
  caf::actor_system sys;

  threaded_system() : sys(init(cfg)) {
    // nop
  }

  static caf::actor_system_config& init(caf::actor_system_config& x) {
    x.set("scheduler.max-threads", 2);
    x.set("logger.console-verbosity", caf::atom("quiet"));
    configure(x);
    return x;
  }
};

} // namespace shardflow::testing
