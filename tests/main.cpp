// The one translation unit that holds Catch2's main; every test executable links this object.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
