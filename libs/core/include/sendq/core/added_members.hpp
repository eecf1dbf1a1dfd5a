#pragma once
/// Members added to a JSON object's text before its closing brace, and taken out again: the worker
/// parks a request on sendq.retry as its original bytes with attempt and not_before added, so that
/// its DLQ record can still be the original bytes (delivery/dead_letter.hpp).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sendq::core {

struct added_members {
  std::string value;   ///< the original with the members in it
  std::string header;  ///< where they are: "<offset>:<length>" in `value`
};
/// `original` with `members` (`"a":1,"b":2`) inserted before its closing brace; nullopt when
/// `original` does not end with an object that has a member. The caller checks that the result
/// decodes (the original may have one of the members already).
std::optional<added_members> add_members(std::string_view original, std::string_view members);
/// Takes out of `value` the members that `header` (add_members' header, as a park carries it) says
/// were put in; false, with `value` untouched, when it does not describe such a range of `value`:
/// one that starts `,"attempt":` (what a park adds) and ends at the object's last brace, so that
/// a header copied onto another record cannot cut members out of it. `removed` gets them.
bool remove_added_members(std::string& value, std::string_view header, std::string* removed = nullptr);

}  // namespace sendq::core
