#include "xml_text.hpp"

#include <cstdint>

namespace sendq::providers::detail {
namespace {

constexpr bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

constexpr bool is_name_start(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || u >= 0x80;
}

constexpr bool is_name_char(char c) noexcept {
  return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// The code point of a character reference's digits ("65", "x41"), when XML allows it.
std::optional<std::uint32_t> char_ref(std::string_view ref) noexcept {
  const bool hex = !ref.empty() && ref[0] == 'x';
  if (hex) ref.remove_prefix(1);
  if (ref.empty() || ref.size() > 8) return std::nullopt;
  std::uint32_t cp = 0;
  for (const char c : ref) {
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
    if (d < 0) return std::nullopt;
    cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(d);
  }
  const bool allowed = cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
                       (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
  if (!allowed) return std::nullopt;
  return cp;
}

// Unescapes character data or an attribute value (which the caller cut at '<' or the quote).
std::optional<std::string> unescape(std::string_view s, std::string& why) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    const auto semi = s.find(';', i);
    if (semi == std::string_view::npos) {
      why = "'&' without ';'";
      return std::nullopt;
    }
    const auto ref = s.substr(i + 1, semi - i - 1);
    if (ref == "amp") {
      out.push_back('&');
    } else if (ref == "lt") {
      out.push_back('<');
    } else if (ref == "gt") {
      out.push_back('>');
    } else if (ref == "quot") {
      out.push_back('"');
    } else if (ref == "apos") {
      out.push_back('\'');
    } else if (!ref.empty() && ref[0] == '#') {
      const auto cp = char_ref(ref.substr(1));
      if (!cp) {
        why = "bad character reference &" + std::string(ref.substr(0, 16)) + ";";
        return std::nullopt;
      }
      append_utf8(out, *cp);
    } else {
      why = "unknown entity &" + std::string(ref.substr(0, 16)) + ";";
      return std::nullopt;
    }
    i = semi;
  }
  return out;
}

// A cursor over the document. Every read checks bounds; nothing recurses.
class cursor {
 public:
  explicit cursor(std::string_view s) : s_(s) {}

  bool at_end() const noexcept { return pos_ >= s_.size(); }
  bool starts(std::string_view t) const noexcept { return s_.substr(pos_).starts_with(t); }
  void skip_spaces() noexcept {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
  }

  // Skips whitespace, comments and processing instructions (the XML declaration among them).
  std::optional<std::string> skip_misc() {
    for (;;) {
      skip_spaces();
      if (starts("<!--")) {
        const auto end = s_.find("-->", pos_ + 4);
        if (end == std::string_view::npos) return std::string("unterminated comment");
        pos_ = end + 3;
      } else if (starts("<?")) {
        const auto end = s_.find("?>", pos_ + 2);
        if (end == std::string_view::npos) return std::string("unterminated <?...?>");
        pos_ = end + 2;
      } else if (starts("<!")) {
        return std::string("DOCTYPE and CDATA are not accepted");
      } else {
        return std::nullopt;
      }
    }
  }

  std::string_view name() noexcept {
    const auto start = pos_;
    if (pos_ < s_.size() && is_name_start(s_[pos_])) {
      ++pos_;
      while (pos_ < s_.size() && is_name_char(s_[pos_])) ++pos_;
    }
    return s_.substr(start, pos_ - start);
  }

  // Reads `<name attr="v" ...>` or `<name .../>` at the cursor.
  std::optional<std::string> start_tag(std::string& tag_name,
                                       std::vector<std::pair<std::string, std::string>>& attributes,
                                       bool& self_closing) {
    if (!starts("<")) return std::string("expected an element");
    ++pos_;
    tag_name = name();
    if (tag_name.empty()) return std::string("expected an element name after '<'");
    attributes.clear();
    self_closing = false;
    for (;;) {
      const bool spaced = pos_ < s_.size() && is_space(s_[pos_]);
      skip_spaces();
      if (at_end()) return "unterminated start tag <" + tag_name;
      if (starts("/>")) {
        pos_ += 2;
        self_closing = true;
        return std::nullopt;
      }
      if (s_[pos_] == '>') {
        ++pos_;
        return std::nullopt;
      }
      std::string attr(name());
      if (attr.empty() || !spaced) return "malformed start tag <" + tag_name;
      skip_spaces();
      if (!starts("=")) return "attribute " + attr + " of <" + tag_name + "> has no value";
      ++pos_;
      skip_spaces();
      if (at_end() || (s_[pos_] != '"' && s_[pos_] != '\'')) {
        return "attribute " + attr + " of <" + tag_name + "> is not quoted";
      }
      const char quote = s_[pos_++];
      const auto end = s_.find(quote, pos_);
      if (end == std::string_view::npos) return "unterminated attribute " + attr;
      const auto raw = s_.substr(pos_, end - pos_);
      if (raw.find('<') != std::string_view::npos) return "'<' in attribute " + attr;
      std::string why;
      auto value = unescape(raw, why);
      if (!value) return "attribute " + attr + ": " + why;
      for (const auto& [k, v] : attributes) {
        if (k == attr) return "duplicate attribute " + attr + " on <" + tag_name + ">";
      }
      attributes.emplace_back(std::move(attr), std::move(*value));
      pos_ = end + 1;
    }
  }

  // Reads `</name>` at the cursor.
  std::optional<std::string> end_tag(std::string_view expected) {
    if (!starts("</")) return "expected </" + std::string(expected) + ">";
    pos_ += 2;
    const auto got = name();
    skip_spaces();
    if (got != expected || !starts(">")) return "expected </" + std::string(expected) + ">";
    ++pos_;
    return std::nullopt;
  }

  // Character data up to the next '<' (or the end).
  std::string_view text() noexcept {
    auto end = s_.find('<', pos_);
    if (end == std::string_view::npos) end = s_.size();
    const auto t = s_.substr(pos_, end - pos_);
    pos_ = end;
    return t;
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

bool is_blank(std::string_view s) noexcept {
  for (const char c : s) {
    if (!is_space(c)) return false;
  }
  return true;
}

bool is_nil(const std::vector<std::pair<std::string, std::string>>& attributes) {
  for (const auto& [k, v] : attributes) {
    const auto colon = k.find(':');
    const std::string_view local = colon == std::string::npos ? std::string_view(k)
                                                              : std::string_view(k).substr(colon + 1);
    if (local == "nil" && v == "true") return true;
  }
  return false;
}

}  // namespace

bool xml_representable(std::string_view text) noexcept {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u < 0x20 && u != '\t' && u != '\n' && u != '\r') return false;
    // U+FFFE and U+FFFF (EF BF BE, EF BF BF) are not XML 1.0 characters either. Valid UTF-8
    // holds no surrogates, so these are the only others outside XML's Char production.
    if (u == 0xEF && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0xBF &&
        (static_cast<unsigned char>(text[i + 2]) & 0xFE) == 0xBE) {
      return false;
    }
  }
  return true;
}

void append_xml_escaped(std::string& out, std::string_view text) {
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      case '\r': out += "&#xD;"; break;
      default: out.push_back(c);
    }
  }
}

const std::string* flat_xml::attribute(std::string_view name) const noexcept {
  for (const auto& [k, v] : attributes) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::optional<std::string> read_flat_xml(std::string_view doc, flat_xml& out) {
  out = flat_xml{};
  if (doc.starts_with("\xEF\xBB\xBF")) doc.remove_prefix(3);
  cursor c(doc);
  if (auto err = c.skip_misc()) return err;
  if (c.at_end()) return std::string("no root element");
  bool self_closing = false;
  if (auto err = c.start_tag(out.root, out.attributes, self_closing)) return err;
  while (!self_closing) {
    if (!is_blank(c.text())) return "text directly inside <" + out.root + ">";
    if (auto err = c.skip_misc()) return err;
    if (c.at_end()) return "missing </" + out.root + ">";
    if (c.starts("</")) {
      if (auto err = c.end_tag(out.root)) return err;
      break;
    }
    xml_child child;
    std::vector<std::pair<std::string, std::string>> attributes;
    bool empty = false;
    if (auto err = c.start_tag(child.name, attributes, empty)) return err;
    child.nil = is_nil(attributes);
    if (!empty) {
      const auto raw = c.text();
      if (c.at_end()) return "missing </" + child.name + ">";
      if (!c.starts("</")) return "<" + child.name + "> must hold text only";
      std::string why;
      auto value = unescape(raw, why);
      if (!value) return "<" + child.name + ">: " + why;
      child.text = std::move(*value);
      if (auto err = c.end_tag(child.name)) return err;
    }
    out.children.push_back(std::move(child));
  }
  if (auto err = c.skip_misc()) return err;
  if (!c.at_end()) return "content after </" + out.root + ">";
  return std::nullopt;
}

}  // namespace sendq::providers::detail
