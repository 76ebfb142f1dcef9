// Closest-match suggestions for unknown keys and enum values.
#include "suggest.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace pgweir::config::detail {
namespace {

constexpr std::size_t k_max_suggestion_distance = 2;

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t rows = a.size() + 1;
  const std::size_t cols = b.size() + 1;
  std::vector<std::size_t> d(rows * cols);
  const auto at = [&](std::size_t i, std::size_t j) -> std::size_t& { return d[i * cols + j]; };
  for (std::size_t i = 0; i < rows; ++i) at(i, 0) = i;
  for (std::size_t j = 0; j < cols; ++j) at(0, j) = j;
  for (std::size_t i = 1; i < rows; ++i) {
    for (std::size_t j = 1; j < cols; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        at(i, j) = std::min(at(i, j), at(i - 2, j - 2) + 1);
      }
    }
  }
  return at(rows - 1, cols - 1);
}

std::optional<std::string_view> closest_match(std::string_view word, std::span<const std::string_view> candidates) {
  for (auto candidate : candidates) {
    if (equal_ignoring_case(word, candidate)) return candidate;
  }
  std::optional<std::string_view> best;
  std::size_t best_distance = k_max_suggestion_distance + 1;
  for (auto candidate : candidates) {
    const auto distance = edit_distance(word, candidate);
    // A two-letter word is two edits from every other two-letter word; such a hint would be noise.
    if (distance < best_distance && distance < std::max(word.size(), candidate.size())) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

}  // namespace pgweir::config::detail
