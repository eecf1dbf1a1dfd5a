#pragma once
/// A string assignment for hot paths that reuse their strings from one message to the next.
#include <string>
#include <string_view>

namespace sendq::core {

/// Sets `dst` to `s`, keeping `dst`'s storage. std::string::assign goes through
/// basic_string::_M_replace, which first checks whether `s` lies inside `dst`; clear() + append()
/// skips that and costs about half the instructions (libstdc++ 12). `s` must not point into `dst`.
inline void set_string(std::string& dst, std::string_view s) {
  dst.clear();
  dst.append(s.data(), s.size());
}

}  // namespace sendq::core
