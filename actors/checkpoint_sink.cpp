#include <shardflow/actors/checkpoint_sink.hpp>

#include <caf/all.hpp>

#include <shardflow/actors/messages.hpp>

namespace shardflow {

namespace {

template <class F>
auto guarded(F&& f) -> caf::result<decltype(f())> {
  try {
    return f();
  } catch (const error& e) {
    return make_error(e.code(), e.what());
  } catch (const std::exception& e) {
    return make_error(errc::checkpoint_failed, e.what());
  } catch (...) { // the sink serves every shard: whatever a store throws must not end it
    return make_error(errc::checkpoint_failed,
                      "the checkpoint store threw a non-standard exception");
  }
}

caf::behavior sink_impl(caf::event_based_actor*, std::shared_ptr<checkpoint_store> store) {
  return {
    [store](load_atom, const shard_id& id) -> caf::result<stored_checkpoint> {
      return guarded([&] { return store->load(id); });
    },
    [store](save_atom, const shard_id& id, std::uint64_t gen,
            const checkpoint& cp) -> caf::result<caf::ok_atom> {
      return guarded([&] {
        store->save(id, gen, cp);
        return caf::ok_atom::value;
      });
    },
  };
}

} // namespace

caf::actor spawn_checkpoint_sink(caf::actor_system& sys, std::shared_ptr<checkpoint_store> store,
                                 bool detached) {
  if (detached)
    return sys.spawn<caf::detached>(sink_impl, std::move(store));
  return sys.spawn(sink_impl, std::move(store));
}

} // namespace shardflow
