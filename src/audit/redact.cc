#include "audit/redact.h"

#include <array>
#include <cctype>

namespace lb::audit {
namespace {

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
}

// "--name", "--name=value", "-name": an option, by the rule in redact.h.
bool IsOption(std::string_view arg) {
  if (arg.size() < 3 || arg[0] != '-') return false;
  return arg[1] == '-' || std::isalpha(static_cast<unsigned char>(arg[1])) != 0;
}

void ReplaceKnownSecrets(std::string& text, std::span<const std::string> secrets) {
  for (const auto& s : secrets) {
    // Shorter values would match ordinary words; nobody's password is three characters
    // long, and if it were, redacting every "abc" in a log would not help either.
    if (s.size() < 4) continue;
    for (size_t pos = text.find(s); pos != std::string::npos;
         pos = text.find(s, pos + kRedacted.size())) {
      text.replace(pos, s.size(), kRedacted);
    }
  }
}

void RedactUrlPasswords(std::string& text) {
  size_t pos = 0;
  while ((pos = text.find("://", pos)) != std::string::npos) {
    const size_t start = pos + 3;
    size_t end = start;
    while (end < text.size() && text[end] != '/' && text[end] != '?' && text[end] != '#' &&
           !IsSpace(text[end])) {
      ++end;
    }
    const size_t at = text.rfind('@', end == 0 ? 0 : end - 1);
    if (at != std::string::npos && at >= start && at < end) {
      const size_t colon = text.find(':', start);
      if (colon < at && colon + 1 < at &&
          std::string_view(text).substr(colon + 1, at - colon - 1) != kRedacted) {
        text.replace(colon + 1, at - colon - 1, kRedacted);
        end = colon + 1 + kRedacted.size();
      }
    }
    pos = end > start ? end : start;
  }
}

void RedactNamedValues(std::string& text) {
  size_t eq = 0;
  while ((eq = text.find('=', eq)) != std::string::npos) {
    size_t name_start = eq;
    while (name_start > 0 && IsNameChar(text[name_start - 1])) --name_start;
    const bool boundary = name_start == 0 || IsSpace(text[name_start - 1]) ||
                          text[name_start - 1] == '?' || text[name_start - 1] == '&' ||
                          text[name_start - 1] == ';' || text[name_start - 1] == ',';
    const size_t value_start = eq + 1;
    if (name_start == eq || !boundary ||
        !IsSecretName(std::string_view(text).substr(name_start, eq - name_start))) {
      eq = value_start;
      continue;
    }
    size_t value_end = value_start;
    if (value_end < text.size() && text[value_end] == '\'') {
      // A quoted libpq value: backslash escapes the next character.
      ++value_end;
      while (value_end < text.size() && text[value_end] != '\'') {
        value_end += text[value_end] == '\\' ? 2 : 1;
      }
      value_end = std::min(value_end + 1, text.size());
    } else {
      while (value_end < text.size() && !IsSpace(text[value_end]) && text[value_end] != '&' &&
             text[value_end] != ';') {
        ++value_end;
      }
    }
    if (value_end > value_start &&
        std::string_view(text).substr(value_start, value_end - value_start) != kRedacted) {
      text.replace(value_start, value_end - value_start, kRedacted);
      value_end = value_start + kRedacted.size();
    }
    eq = value_end;
  }
}

}  // namespace

bool IsSecretName(std::string_view name) {
  while (!name.empty() && name.front() == '-') name.remove_prefix(1);
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static constexpr std::array<std::string_view, 6> kPlaces = {"-file", "_file", "-path",
                                                              "_path", "-dir",  "_dir"};
  for (auto suffix : kPlaces) {
    if (lower.ends_with(suffix)) return false;
  }
  static constexpr std::array<std::string_view, 10> kWords = {
      "password", "passwd", "passphrase", "pwd",  "secret",
      "token",    "key",    "credential", "auth", "signature"};
  for (auto word : kWords) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return false;
}

std::string RedactText(std::string_view text, std::span<const std::string> known_secrets) {
  std::string out(text);
  ReplaceKnownSecrets(out, known_secrets);
  RedactUrlPasswords(out);
  RedactNamedValues(out);
  return out;
}

std::vector<std::string> RedactArgv(std::span<const std::string> argv,
                                    std::span<const std::string> known_secrets) {
  std::vector<std::string> out;
  out.reserve(argv.size());
  bool value_is_secret = false;
  for (const auto& arg : argv) {
    if (value_is_secret) {
      out.emplace_back(kRedacted);
      value_is_secret = false;
      continue;
    }
    if (IsOption(arg)) {
      const size_t eq = arg.find('=');
      const std::string_view name = std::string_view(arg).substr(0, eq);
      if (IsSecretName(name)) {
        if (eq == std::string::npos) {
          // "-pVALUE" glues values to one-dash options, so the next argument is the value
          // only after a two-dash option.
          value_is_secret = arg.starts_with("--");
          out.push_back(RedactText(arg, known_secrets));
        } else {
          out.push_back(std::string(name) + "=" + std::string(kRedacted));
        }
        continue;
      }
    }
    out.push_back(RedactText(arg, known_secrets));
  }
  return out;
}

}  // namespace lb::audit
