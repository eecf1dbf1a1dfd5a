#pragma once
/// Just enough XML for the flat DataContract documents of seed 004 (gps): escaping for writing,
/// and a reader for one root element whose children hold text only. Never throws and never
/// trusts the input; no DTDs, no entities beyond the five predefined and character references.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sendq::providers::detail {

/// True when XML 1.0 can carry `text`: no C0 control character other than TAB, LF and CR, and
/// no U+FFFE or U+FFFF (not even as a character reference). `text` is UTF-8 (the decoder and the TOML reader
/// guarantee it).
bool xml_representable(std::string_view text) noexcept;

/// Appends `text` as XML character data or attribute value: `&`, `<`, `>`, `"`, `'` as the
/// predefined entities, CR as `&#xD;` (a parser would otherwise turn it into LF).
void append_xml_escaped(std::string& out, std::string_view text);

/// A child element of the root: its name as written (prefix included) and its text, unescaped.
struct xml_child {
  std::string name;
  std::string text;
  bool nil = false;  ///< it has an `...:nil="true"` attribute (`xsi:nil`)
};

/// A document of one root element holding only text-only child elements.
struct flat_xml {
  std::string root;  ///< the root element's name as written
  std::vector<std::pair<std::string, std::string>> attributes;  ///< the root's, values unescaped
  std::vector<xml_child> children;                              ///< in document order

  /// Value of the root's attribute `name` ("xmlns", "xmlns:i"), or nullptr.
  const std::string* attribute(std::string_view name) const noexcept;
};

/// Reads `doc` into `out` (cleared first): an optional UTF-8 BOM, XML declaration, comments
/// and whitespace around one root element whose content is whitespace, comments and child
/// elements of text only (`<a>text</a>` or `<a/>`). Returns what is wrong otherwise (nested
/// elements, CDATA, a DOCTYPE, unknown entities, mismatched or missing end tags, trailing
/// content).
std::optional<std::string> read_flat_xml(std::string_view doc, flat_xml& out);

}  // namespace sendq::providers::detail
