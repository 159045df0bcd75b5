// A host of the installed CAF layer, built with `pkg-config --cflags --libs shardflow-actors` alone
// (tests/install/install_test.sh pkg_config): it starts an actor system and links the runtime, so
// the .pc file must name CAF and the archives in an order that links. Exit code 0 when it runs.
#include <cstdio>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <shardflow/actors/runtime.hpp>

int main() {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto spawn = &shardflow::spawn_runtime; // links the runtime and the supervisor under it
  std::printf("actors consumer: %s\n", spawn != nullptr ? "linked" : "missing");
  return spawn != nullptr ? 0 : 1;
}
