// Redaction of secrets from what the audit log records: command lines, repository urls and
// error messages. The rules are listed in docs/user-guide.md, "Audit trail".
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lb::audit {

// What a redacted value is replaced with.
inline constexpr std::string_view kRedacted = "<redacted>";

// True when an option or parameter called `name` carries a secret: its name (leading dashes
// removed, case ignored) contains password, passwd, passphrase, pwd, secret, token, key,
// credential, auth or signature, and does not end in -file, _file, -path, _path, -dir or
// _dir (those name where a secret is kept, which is not secret).
bool IsSecretName(std::string_view name);

// Redacts inside one piece of text, in this order:
//   1. every occurrence of a `known_secrets` value of at least 4 bytes;
//   2. the password of a url's user info: "s3://KEY:SECRET@host" -> "s3://KEY:<redacted>@host"
//      (a user name alone is kept);
//   3. the value of every NAME=VALUE whose NAME passes IsSecretName, where NAME starts the text
//      or follows white space, '?', '&', ';' or ','; VALUE runs to the next white space, '&'
//      or ';', or is a '...' quoted libpq value: "password='a b' host=x" ->
//      "password=<redacted> host=x", "?secret=abc&x=1" -> "?secret=<redacted>&x=1".
std::string RedactText(std::string_view text, std::span<const std::string> known_secrets = {});

// Redacts a command line: RedactText on every argument, and the value of every option whose
// name passes IsSecretName, written "--name=VALUE", "-name=VALUE" or "--name VALUE" (then the
// next argument is redacted whatever it looks like). An option is an argument starting with
// "--", or with one '-' and at least two more characters; "--" itself and "-" are not. A
// value glued to a one-dash option ("-pVALUE") cannot be told from an option name and is not
// redacted unless it is a known secret.
std::vector<std::string> RedactArgv(std::span<const std::string> argv,
                                    std::span<const std::string> known_secrets = {});

}  // namespace lb::audit
