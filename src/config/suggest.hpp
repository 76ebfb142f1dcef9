// "did you mean `x`?" for mistyped keys and enum values.
#pragma once

#include <optional>
#include <span>
#include <string_view>

namespace pgweir::config::detail {

// Edit distance with adjacent transpositions counted as one edit ("szie" is one edit from "size").
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate that matches `word` ignoring case, else the closest one within two edits; nullopt when none is.
std::optional<std::string_view> closest_match(std::string_view word, std::span<const std::string_view> candidates);

}  // namespace pgweir::config::detail
