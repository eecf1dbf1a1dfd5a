#pragma once
/// Reads the members of a small JSON object (a provider reply, `provider_fields`, a passthrough
/// body) into values that own their text. Never throws and never trusts the input.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sendq::providers::detail {

enum class json_kind { null, boolean, number, string, object, array };

struct json_member {
  std::string name;  ///< "ret", or "data.newMsgId" for a member of the nested object
  json_kind kind = json_kind::null;
  /// string: unescaped; number: the exact token (every digit kept); boolean: "true"/"false";
  /// null: "null"; object/array: empty (not read).
  std::string text;
  /// number: it is an integer that fits 64 bits (signed or unsigned).
  bool integer = false;
};

using json_members = std::vector<json_member>;

/// Reads the members of the JSON object `json` into `out`, replacing what it held (empty on an
/// error). A vector reused across calls keeps its members' string storage, so the per-reply callers
/// keep one per thread. When `nested` is not empty, the members of the object member of that name
/// are added too, as "nested.name".
/// Returns a message saying what is wrong when `json` is not exactly one valid JSON object.
std::optional<std::string> read_members(std::string_view json, json_members& out,
                                        std::string_view nested = {});

/// The member named `name`, or nullptr.
const json_member* find_member(const json_members& members, std::string_view name) noexcept;

/// nullopt when member `name` is present with kind `k` (or `alt`); otherwise why not, for a
/// message: `missing "ret"`, `"ret" is a string, not a number`.
std::optional<std::string> expect_kind(const json_members& members, std::string_view name,
                                       json_kind k, std::optional<json_kind> alt = std::nullopt);

/// "a string", "a number", ... for messages.
std::string_view describe(json_kind k) noexcept;

}  // namespace sendq::providers::detail
