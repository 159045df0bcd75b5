#include <shardflow/actors/messages.hpp>

#include <caf/sec.hpp>

namespace shardflow {

namespace {

const caf::atom_value category = caf::atom("shardflow");

} // namespace

caf::error make_error(errc code, std::string text) {
  return caf::error{static_cast<std::uint8_t>(code), category, caf::make_message(std::move(text))};
}

caf::error error_from(std::exception_ptr eptr) {
  try {
    std::rethrow_exception(eptr);
  } catch (const error& e) {
    return make_error(e.code(), e.what());
  } catch (const std::exception& e) {
    return caf::make_error(caf::sec::runtime_error, e.what());
  } catch (...) {
    return caf::make_error(caf::sec::runtime_error, "a non-standard exception");
  }
}

errc code_of(const caf::error& err) noexcept {
  if (!err
      || err.category() != category) // CAF 0.17: category() of an empty error dereferences null
    return errc::none;
  return static_cast<errc>(err.code());
}

std::string text_of(const caf::error& err) {
  if (!err)
    return caf::to_string(err);
  if (err.category() == category && err.context().match_elements<std::string>())
    return err.context().get_as<std::string>(0);
  if (err.category() == caf::atom("system") && err.context().match_elements<std::string>())
    return err.context().get_as<std::string>(0);
  return caf::to_string(err);
}

error error_of(const caf::error& err, errc fallback) {
  const auto code = code_of(err);
  return error{code == errc::none ? fallback : code, text_of(err)};
}

void configure(caf::actor_system_config& cfg) {
  cfg.add_error_category(category, [](std::uint8_t code, caf::atom_value, const caf::message& ctx) {
    std::string result = "shardflow: ";
    result += to_string(static_cast<errc>(code));
    if (ctx.match_elements<std::string>() && !ctx.get_as<std::string>(0).empty()) {
      result += ": ";
      result += ctx.get_as<std::string>(0);
    }
    return result;
  });
}

} // namespace shardflow
