// Force-included into the config sources of the fuzz build (see CMakeLists.txt, PGWEIR_FUZZ_TOML_ASSERTS): compiles
// toml++'s internal assertions out, as in the NDEBUG release library pgweir links, without NDEBUG's other effects.
#pragma once
#define TOML_ASSERT(expr) static_assert(true)
