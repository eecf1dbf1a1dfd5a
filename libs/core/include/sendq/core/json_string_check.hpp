#pragma once
/// Why a JSON string cannot be unescaped (a lone UTF-16 surrogate such as `\ud800`, an escape JSON
/// does not have such as `\q`, `\u` without four hex digits), for error messages. simdjson only
/// says STRING_ERROR; these name the escape. Shared by the SendRequest decoder and the gateway's
/// legacy API so that both report such a string in the same words. Error path only (they allocate);
/// pure functions, thread-safe.
#include <optional>
#include <string>
#include <string_view>

namespace sendq::core {

/// ".name" for a member in an error's path, a name over 64 bytes cut (results and DLQ headers stay small).
std::string member_path(std::string_view name);

/// "not a valid JSON string: <why>" for a string value simdjson refused with STRING_ERROR.
/// `token` is its raw JSON text, quotes included; blanks after the closing quote are ignored.
std::string string_error(std::string_view token);

/// "a member name is not a valid JSON string: <why>", as string_error for a member name.
std::string member_name_error(std::string_view token);

/// The raw text of the string whose content starts at `content` (just after its opening quote),
/// quotes included, up to its closing quote or `end`: the token for member_name_error of a member
/// name simdjson's on-demand API has only a pointer to (and which unescaped_key() consumes).
std::string_view quoted_token(const char* content, const char* end);

/// The first string in `raw` (a JSON value the DOM parser refused with STRING_ERROR, so valid JSON
/// up to that string) that cannot be unescaped: "<path>: <string_error or member_name_error>", the
/// path relative to `raw` (".a.b", ".l[1]"; a member name is reported at the object holding it),
/// or nullopt. A flat scan with its own stack: nesting costs no recursion.
std::optional<std::string> find_bad_string(std::string_view raw);

}  // namespace sendq::core
