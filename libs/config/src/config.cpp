#include "sendq/config/config.hpp"

#include "sendq/core/failure.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

namespace sendq::config {
namespace {

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

[[noreturn]] void fail(const std::string& msg) { throw config_error(msg); }

// Setting keys that hold credentials: redacted from logs, never in results or metrics.
bool is_secret_key(std::string_view k) {
  return k == "token" || k == "sign" || k == "sign_secret" || k == "password" || k == "api_key";
}

struct int_key {
  const char* name;
  int* target;
  int min;
  int max;
};

struct string_key {
  const char* name;
  std::string* target;
};

// A file a setting names must be a regular file: a device or FIFO (a typo naming /dev/zero or a
// pipe) would hang start-up, and a directory opens as a stream that reads as empty.
void require_regular_file(const std::string& path, const std::string& setting) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st)) fail(setting + ": cannot read '" + path + "'");
  if (!std::filesystem::is_regular_file(st)) fail(setting + ": '" + path + "' is not a regular file");
}

// A secret kept in a file, or mounted from one into a variable (Kubernetes), often ends in one.
void drop_trailing_newlines(std::string& v) {
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
}

std::string read_secret_file(const std::string& path, const std::string& key) {
  // A secret is a short regular file: nothing too large to be a credential either.
  constexpr std::uintmax_t max_secret_bytes = 64 * 1024;
  require_regular_file(path, key + "_file");
  std::error_code ec;
  if (std::filesystem::file_size(path, ec) > max_secret_bytes || ec) {
    fail(key + "_file: '" + path + "' is larger than 64 KiB, which no secret is");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(key + "_file: cannot read '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string v = ss.str();
  drop_trailing_newlines(v);
  return v;
}

// The node's integer, or nullopt when it is not an integer node. toml++'s value<int64_t>() also
// converts a float node (4e97) with a cast whose overflow is undefined behaviour (fuzz_config).
std::optional<std::int64_t> integer_of(const toml::node& v) {
  return v.is_integer() ? v.value<std::int64_t>() : std::nullopt;
}

// A name librdkafka refuses would make every result for that topic fail; a name the broker
// refuses, every delivery report. Refused here, at start-up, naming the key.
void check_topic_name(const std::string& where, const std::string& name) {
  if (!is_topic_name(name)) {
    fail(where + ": '" + name + "' is not a Kafka topic name (1 to 249 of A-Z a-z 0-9 . _ -, not \".\" or \"..\")");
  }
}

// Applies one section's scalar keys from TOML, then from SENDQ_<SECTION>_<KEY>.
void read_section(const toml::table* t, std::string_view section, std::vector<int_key> ints,
                  std::vector<string_key> strings, const env_lookup& env,
                  std::vector<std::string_view> tables = {}) {
  if (t) {
    for (const auto& [k, v] : *t) {
      const std::string key(k.str());
      const std::string where = std::string(section) + "." + key;
      auto i = std::find_if(ints.begin(), ints.end(), [&](auto& x) { return key == x.name; });
      auto s = std::find_if(strings.begin(), strings.end(), [&](auto& x) { return key == x.name; });
      if (i != ints.end()) {
        const auto n = integer_of(v);
        if (!n) fail(where + ": must be an integer");
        if (*n < i->min || *n > i->max) {
          fail(where + ": " + std::to_string(*n) + " is outside " + std::to_string(i->min) + ".." +
               std::to_string(i->max));
        }
        *i->target = static_cast<int>(*n);
      } else if (s != strings.end()) {
        auto str = v.value<std::string>();
        if (!v.is_string() || !str) fail(where + ": must be a string");
        *s->target = *str;
      } else if (std::find(tables.begin(), tables.end(), key) == tables.end()) {
        fail(where + ": unknown key (see docs/configuration.md)");
      }
    }
  }
  const std::string prefix = "SENDQ_" + upper(std::string(section)) + "_";
  for (auto& i : ints) {
    if (auto v = env(prefix + upper(i.name))) {
      char* end = nullptr;
      const long n = std::strtol(v->c_str(), &end, 10);
      if (v->empty() || *end != '\0' || n < i.min || n > i.max) {
        fail(prefix + upper(i.name) + ": '" + *v + "' is not an integer within " +
             std::to_string(i.min) + ".." + std::to_string(i.max));
      }
      *i.target = static_cast<int>(n);
    }
  }
  for (auto& s : strings) {
    if (auto v = env(prefix + upper(s.name))) *s.target = *v;
  }
}

void read_accounts(const toml::table* providers_table, config& c, const env_lookup& env) {
  // [providers.<provider>.<account>] tables.
  if (providers_table) {
    for (const auto& [pk, pv] : *providers_table) {
      const std::string provider(pk.str());
      auto impl = providers::make_provider(provider);
      if (!impl) fail("providers." + provider + ": unknown provider (known: sender, gewe, im, gps)");
      const auto* accounts = pv.as_table();
      if (!accounts) fail("providers." + provider + ": must be a table of accounts");
      for (const auto& [ak, av] : *accounts) {
        providers::account a;
        a.provider = provider;
        a.name = std::string(ak.str());
        const std::string where = "providers." + provider + "." + a.name;
        const auto* t = av.as_table();
        if (!t) fail(where + ": must be a table");
        const auto keys = impl->account_keys();
        policy::account_limits limits{provider, a.name, {}};
        bool limited = false;
        for (const auto& [k, v] : *t) {
          std::string key(k.str());
          // Rate limits are common to every provider: "100/1s, 6000/1m"; pacing "2s-8s".
          if (key == "rate_limit" || key == "recipient_rate_limit" || key == "pacing") {
            auto text = v.value<std::string>();
            if (!v.is_string()) fail(where + "." + key + ": must be a string");
            if (key == "rate_limit") {
              auto w = policy::parse_windows(*text);
              if (!w) fail(where + ".rate_limit: " + w.error);
              limits.limits.windows = *w.value;
            } else if (key == "recipient_rate_limit") {
              auto w = policy::parse_window(*text);
              if (!w) fail(where + ".recipient_rate_limit: " + w.error);
              limits.limits.per_recipient = *w.value;
            } else {
              const auto dash = text->find('-');
              if (dash == std::string::npos) fail(where + ".pacing: '" + *text + "' is not MIN-MAX, e.g. \"2s-8s\"");
              auto lo = policy::parse_duration(text->substr(0, dash));
              auto hi = policy::parse_duration(text->substr(dash + 1));
              if (!lo) fail(where + ".pacing: " + lo.error);
              if (!hi) fail(where + ".pacing: " + hi.error);
              if (*hi.value < *lo.value) fail(where + ".pacing: the maximum gap is smaller than the minimum");
              limits.limits.pacing = policy::pacing{*lo.value, *hi.value};
            }
            limited = true;
            continue;
          }
          if (key == "base_url") {
            auto s = v.value<std::string>();
            if (!v.is_string()) fail(where + ".base_url: must be a string");
            a.base_url = *s;
            continue;
          }
          if (key == "retry_ambiguous") {
            if (!v.is_boolean()) fail(where + ".retry_ambiguous: must be true or false");
            a.retry_ambiguous = *v.value<bool>();
            continue;
          }
          if (key == "follow_redirects") {
            const auto n = integer_of(v);
            if (!n || *n < 0 || *n > 10) fail(where + ".follow_redirects: must be an integer in 0..10");
            a.follow_redirects = static_cast<unsigned>(*n);
            continue;
          }
          // Secrets may come from a file or an environment variable.
          std::string value;
          std::string name = key;
          if (key.size() > 5 && key.ends_with("_file")) {
            name = key.substr(0, key.size() - 5);
            if (!v.is_string()) fail(where + "." + key + ": must be a path");
            value = read_secret_file(*v.value<std::string>(), where + "." + name);
          } else if (key.size() > 4 && key.ends_with("_env")) {
            name = key.substr(0, key.size() - 4);
            if (!v.is_string()) fail(where + "." + key + ": must be an environment variable name");
            auto e = env(*v.value<std::string>());
            if (!e) fail(where + "." + key + ": environment variable " + *v.value<std::string>() + " is not set");
            value = *e;
            drop_trailing_newlines(value);
          } else if (v.is_string()) {
            value = *v.value<std::string>();
          } else if (v.is_integer()) {
            value = std::to_string(*v.value<int64_t>());
          } else if (v.is_boolean()) {
            value = *v.value<bool>() ? "true" : "false";  // fetch_allow_private = true
          } else {
            fail(where + "." + key + ": must be a string, an integer or a boolean");
          }
          if (std::find(keys.begin(), keys.end(), name) == keys.end()) {
            std::string known;
            for (auto k2 : keys) known += (known.empty() ? "" : ", ") + std::string(k2);
            fail(where + "." + name + ": unknown key for provider " + provider + " (known: base_url, retry_ambiguous, follow_redirects, " + known + ")");
          }
          // toml keeps keys unique, but "token", "token_file" and "token_env" all set one key.
          if (a.settings.contains(name)) {
            fail(where + "." + name + ": given twice (directly and as " + name + "_file/" + name + "_env)");
          }
          // Settings go into headers, URLs and bodies: a control byte (CR or LF in a token) would
          // fail every request of the account, or end a header early. Named, never echoed. A
          // signing key only feeds the HMAC or MD5 and may hold any bytes.
          if (const auto bad = core::first_control_character(value); bad && name != "sign_secret") {
            fail(where + "." + name + ": " + *bad + " (a line break or tab in a token or URL?)");
          }
          if (is_secret_key(name) && !value.empty()) c.secrets.push_back(value);
          a.settings[name] = std::move(value);
        }
        if (limited) {
          if (auto err = policy::validate(limits.limits); !err.empty()) fail(where + ": " + err);
          c.limits.push_back(std::move(limits));
        }
        c.accounts.push_back(std::move(a));
      }
    }
  }
  // SENDQ_<PROVIDER>_BASE_URL sets the default account's base URL. It cannot create the account:
  // every provider's account needs credentials from the file (a token, an app id).
  for (auto name : providers::builtin_provider_names()) {
    const std::string variable = "SENDQ_" + upper(std::string(name)) + "_BASE_URL";
    if (auto v = env(variable); v && !v->empty()) {
      auto it = std::find_if(c.accounts.begin(), c.accounts.end(),
                             [&](auto& a) { return a.provider == name && a.name == "default"; });
      if (it == c.accounts.end()) {
        fail(variable + ": the configuration has no [providers." + std::string(name) +
             ".default] account to set it on (the account's other keys, such as its credentials, must be in the file)");
      }
      it->base_url = *v;
    }
  }
  for (const auto& a : c.accounts) {
    const std::string where = "providers." + a.provider + "." + a.name;
    if (a.base_url.empty()) fail(where + ".base_url: required (or set SENDQ_" + upper(a.provider) + "_BASE_URL)");
    if (!a.base_url.starts_with("http://") && !a.base_url.starts_with("https://")) {
      fail(where + ".base_url: '" + a.base_url + "' must start with http:// or https://");
    }
    auto impl = providers::make_provider(a.provider);
    if (auto err = impl->check_account(a)) fail(where + ": " + *err);
  }
}

void add_api_key(config& c, std::string key) {
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
  const auto start = key.find_first_not_of(" \t");
  if (start == std::string::npos || key[start] == '#') return;
  key.erase(0, start);
  c.secrets.push_back(key);
  c.gateway.api_keys.push_back(std::move(key));
}

void read_gateway(const toml::table* t, config& c, const env_lookup& env, bool read_keys) {
  auto& g = c.gateway;
  read_section(t, "gateway",
               {{"threads", &g.threads, 1, 256},
                {"body_limit_bytes", &g.body_limit_bytes, 1024, 256 << 20},
                {"max_batch", &g.max_batch, 1, 100000},
                {"max_in_flight", &g.max_in_flight, 1, 10000000},
                {"produce_timeout_ms", &g.produce_timeout_ms, 100, 3600000},
                {"max_connections", &g.max_connections, 1, 1000000},
                {"max_body_bytes_in_flight", &g.max_body_bytes_in_flight, 1024, 2147483647}},
               {{"addr", &g.addr}, {"metrics_addr", &g.metrics_addr}, {"topic", &g.topic}, {"api_keys_file", &g.api_keys_file},
                {"legacy_account", &g.legacy_account}},
               env, {"api_keys"});
  if (!g.topic.empty()) check_topic_name("gateway.topic", g.topic);  // "" = kafka.requests_topic
  // Requests go to the requests or the bulk topic (or one no worker reads yet); the others' readers
  // would take them for results, DLQ records or parked requests.
  for (const auto& [name, topic] : {std::pair{"results_topic", &c.kafka.results_topic}, {"dlq_topic", &c.kafka.dlq_topic},
                                    {"retry_topic", &c.kafka.retry_topic}}) {
    if (g.topic == *topic) {
      fail("gateway.topic: '" + g.topic + "' is kafka." + name + "; the gateway produces requests (to kafka.requests_topic, "
           "kafka.bulk_topic or a topic of its own)");
    }
  }
  // The legacy API's requests take it as their account, which the worker refuses empty: each
  // caller would be told about a field it never sent.
  if (g.legacy_account.empty()) fail("gateway.legacy_account: must not be empty (the account legacy API requests are sent on)");
  if (t) {
    if (const auto* node = t->get("api_keys")) {
      const auto* arr = node->as_array();
      if (!arr) fail("gateway.api_keys: must be an array of strings");
      for (const auto& v : *arr) {
        auto s = v.value<std::string>();
        // add_api_key would drop a blank or "#..." entry (the file's comment rule) without a word.
        const auto first = s ? s->find_first_not_of(" \t\r\n") : std::string::npos;
        if (!v.is_string() || !s || first == std::string::npos || (*s)[first] == '#') {
          fail("gateway.api_keys: every key must be a non-empty string, not starting with '#'");
        }
        add_api_key(c, *s);
      }
    }
  }
  // Keys in the environment are a comma-separated list (they replace the file's inline ones).
  if (auto v = read_keys ? env("SENDQ_GATEWAY_API_KEYS") : std::nullopt) {
    g.api_keys.clear();
    std::string_view rest = *v;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      add_api_key(c, std::string(rest.substr(0, comma)));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    // Set but empty (a compose file's undefined ${VAR}) would replace the keys with none, and a
    // gateway without keys takes every caller: refuse, as for an api_keys_file without a key.
    if (g.api_keys.empty()) {
      fail("SENDQ_GATEWAY_API_KEYS: set but holds no key (a comma-separated list; unset it to run without keys or "
           "to use gateway.api_keys)");
    }
  }
  if (read_keys && !g.api_keys_file.empty()) {
    // No keys means the gateway takes every caller, so a file that yields none (a directory, which
    // std::ifstream opens and reads as empty, an unreadable or an empty file) stops start-up.
    const std::string& path = g.api_keys_file;
    require_regular_file(path, "gateway.api_keys_file");
    std::ifstream in(path);
    if (!in) fail("gateway.api_keys_file: cannot read '" + path + "'");
    const auto before = g.api_keys.size();
    for (std::string line; std::getline(in, line);) add_api_key(c, line);
    if (in.bad()) fail("gateway.api_keys_file: error reading '" + path + "'");
    if (g.api_keys.size() == before) {
      fail("gateway.api_keys_file: '" + path + "' holds no key (one a line; leave the setting out to run without keys)");
    }
  }
  if (g.max_body_bytes_in_flight < g.body_limit_bytes) {
    fail("gateway.max_body_bytes_in_flight: " + std::to_string(g.max_body_bytes_in_flight) +
         " is less than gateway.body_limit_bytes (" + std::to_string(g.body_limit_bytes) +
         "): it must hold at least one body of the largest size taken");
  }
  if (g.addr.empty() || g.addr.rfind(':') == std::string::npos) {
    fail("gateway.addr: '" + g.addr + "' must be host:port (SENDQ_GATEWAY_ADDR)");
  }
  if (!g.metrics_addr.empty() && g.metrics_addr.rfind(':') == std::string::npos) {
    fail("gateway.metrics_addr: '" + g.metrics_addr + "' must be host:port, or \"\" for none (SENDQ_GATEWAY_METRICS_ADDR)");
  }
}

}  // namespace

const providers::account* config::find_account(std::string_view provider, std::string_view name) const {
  for (const auto& a : accounts) {
    if (a.provider == provider && a.name == name) return &a;
  }
  return nullptr;
}

env_lookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

namespace {

toml::table parse_toml(std::string_view toml_text, std::string_view source_name) {
  try {
    return toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source_name << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
       << e.description();
    fail(os.str());
  }
}

std::string read_file(const std::string& path) {
  // A directory opens as a stream that reads as empty (a Docker bind mount of a missing file is
  // one): the worker would run on the defaults, with no accounts. A FIFO or device would hang.
  std::error_code ec;
  if (const auto st = std::filesystem::status(path, ec); !ec && std::filesystem::exists(st) && !std::filesystem::is_regular_file(st)) {
    throw config_error(path + ": the configuration file is not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config_error(path + ": cannot open the configuration file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Passthrough settings that would silently undo what the worker's guarantees rest on (they
// override sendq's own, being applied last): refused, naming the setting and why.
// `indirect`: the keys whose value came from an environment variable or a file (per process).
void refuse_unsafe_librdkafka(const std::map<std::string, std::string>& settings, const std::set<std::string>& indirect) {
  const auto value_of = [&](const char* key) -> std::optional<std::string> {
    const auto it = settings.find(key);
    if (it == settings.end()) return std::nullopt;
    std::string v = it->second;
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return v;
  };
  for (const char* key : {"enable.auto.commit", "enable.auto.offset.store"}) {
    if (const auto v = value_of(key); v && *v != "false" && *v != "f" && *v != "0") {
      fail(std::string("kafka.librdkafka.") + key + ": '" + settings.at(key) +
           "' is not allowed: the worker stores and commits each offset itself, once the request's result is "
           "acknowledged (at-least-once); leave it out");
    }
  }
  // A result, retry or DLQ record counts as written once the broker acknowledges it, and then its
  // request's offset may be committed: with fewer than all in-sync replicas, a broker lost at that
  // moment loses the record after the commit.
  for (const char* key : {"acks", "request.required.acks"}) {
    if (const auto v = value_of(key); v && *v != "all" && *v != "-1") {
      fail(std::string("kafka.librdkafka.") + key + ": '" + settings.at(key) +
           "' is not allowed: a result, retry or DLQ record must be on every in-sync replica before its request's "
           "offset is committed (at-least-once); use all (-1) or leave it out");
    }
  }
  if (value_of("group.id")) {
    fail("kafka.librdkafka.group.id: set the consumer group with kafka.group_id (SENDQ_KAFKA_GROUP_ID)");
  }
  // A partition with no committed offset (new partitions added to the requests topic, a new
  // group_id, expired offsets) starts at its oldest record: "latest" would skip the requests
  // written before the worker first fetched it, without a result.
  if (const auto v = value_of("auto.offset.reset"); v && *v != "earliest" && *v != "smallest" && *v != "beginning") {
    fail("kafka.librdkafka.auto.offset.reset: '" + settings.at("auto.offset.reset") +
         "' is not allowed: a partition without a committed offset must be read from its oldest request, or the "
         "requests written before the worker first fetched it would get no result; use earliest or leave it out");
  }
  // Every worker and the gateway read the same file: one literal id would be every process's.
  if (value_of("group.instance.id") && !indirect.contains("group.instance.id")) {
    fail("kafka.librdkafka.group.instance.id: a literal value is shared by every worker that reads this file, and "
         "members with the same id fence each other out of the group; give each process its own with "
         "group.instance.id_env (an environment variable such as the pod's name) or leave it out");
  }
  if (value_of("transactional.id")) {
    fail("kafka.librdkafka.transactional.id: not supported: sendq's producers are idempotent, not transactional "
         "(one id shared by the gateway and every worker would fence them from each other); leave it out");
  }
  // librdkafka takes the first strategy all members share; a cooperative one makes the rebalance
  // callback's assign() fail, and the worker would sit with partitions it never fetches.
  if (const auto v = value_of("partition.assignment.strategy"); v && v->find("cooperative") != std::string::npos) {
    fail("kafka.librdkafka.partition.assignment.strategy: '" + settings.at("partition.assignment.strategy") +
         "' is not supported: the worker's rebalancing is eager (all partitions revoked, then assigned); use "
         "range, roundrobin or both (librdkafka's default is range,roundrobin)");
  }
}

// [kafka] and [kafka.librdkafka].
void read_kafka(const toml::table& root, config& c, const env_lookup& env) {
  auto& k = c.kafka;
  read_section(root["kafka"].as_table(), "kafka", {{"embedded_partitions", &k.embedded_partitions, 1, 1024}},
               {{"brokers", &k.brokers}, {"group_id", &k.group_id}, {"requests_topic", &k.requests_topic},
                {"results_topic", &k.results_topic}, {"dlq_topic", &k.dlq_topic}, {"retry_topic", &k.retry_topic}, {"bulk_topic", &k.bulk_topic},
                {"embedded_bootstrap_file", &k.embedded_bootstrap_file}, {"embedded", &k.embedded}},
               env, {"librdkafka"});
  // librdkafka makes no group of an empty id, and the consumer's subscribe then fails naming none.
  if (k.group_id.empty()) fail("kafka.group_id: must not be empty (the consumer group the workers share)");
  if (k.embedded != "auto" && k.embedded != "never") fail("kafka.embedded: '" + k.embedded + "' is not one of auto, never");
  if (const auto* node = root["kafka"]["librdkafka"].node(); node && !node->is_table()) {
    fail("kafka.librdkafka: must be a table of librdkafka settings ([kafka.librdkafka], \"key\" = value)");
  }
  std::set<std::string> indirect;  // keys given as <key>_file / <key>_env
  if (const auto* lt = root["kafka"]["librdkafka"].as_table()) {
    for (const auto& [lk, lv] : *lt) {
      // librdkafka's keys are dotted ("sasl.password"); "<key>_file" / "<key>_env" read the value
      // from a file or an environment variable, as for provider secrets.
      std::string key(lk.str());
      const std::string where = "kafka.librdkafka." + key;
      std::string value;
      if (key.size() > 5 && key.ends_with("_file")) {
        if (!lv.is_string()) fail(where + ": must be a path");
        key.resize(key.size() - 5);
        indirect.insert(key);
        value = read_secret_file(*lv.value<std::string>(), "kafka.librdkafka." + key);
      } else if (key.size() > 4 && key.ends_with("_env")) {
        if (!lv.is_string()) fail(where + ": must be an environment variable name");
        key.resize(key.size() - 4);
        indirect.insert(key);
        auto e = env(*lv.value<std::string>());
        if (!e) fail(where + ": environment variable " + *lv.value<std::string>() + " is not set");
        value = *e;
        drop_trailing_newlines(value);
      } else if (lv.is_string()) {
        value = *lv.value<std::string>();
      } else if (lv.is_integer()) {
        value = std::to_string(*lv.value<int64_t>());
      } else if (lv.is_boolean()) {
        value = *lv.value<bool>() ? "true" : "false";
      } else {
        fail(where + ": must be a string, integer or boolean");
      }
      if (k.librdkafka.contains(key)) fail("kafka.librdkafka." + key + ": given twice (directly and as _file/_env)");
      // Passwords, client secrets and private keys never reach a log line.
      const bool secret = key.find("password") != std::string::npos || key.find("secret") != std::string::npos ||
                          key == "ssl.key.pem" || key == "sasl.oauthbearer.config";
      if (secret && !value.empty()) c.secrets.push_back(value);
      k.librdkafka[key] = std::move(value);
    }
  }
  refuse_unsafe_librdkafka(k.librdkafka, indirect);
  const std::pair<const char*, const std::string*> topics[] = {{"requests_topic", &k.requests_topic},
                                                               {"results_topic", &k.results_topic},
                                                               {"dlq_topic", &k.dlq_topic},
                                                               {"retry_topic", &k.retry_topic},
                                                               {"bulk_topic", &k.bulk_topic}};
  for (const auto& [name, topic] : topics) check_topic_name(std::string("kafka.") + name, *topic);
  // One topic in two roles makes a loop: a worker reading its own results (or DLQ records) as
  // requests answers each with another result on the same topic, for ever.
  for (std::size_t i = 0; i < std::size(topics); ++i) {
    for (std::size_t j = i + 1; j < std::size(topics); ++j) {
      if (*topics[i].second == *topics[j].second) {
        fail(std::string("kafka.") + topics[j].first + ": '" + *topics[j].second + "' is kafka." + topics[i].first +
             " too; each of the five topics has one role");
      }
    }
  }
}

}  // namespace

std::size_t producer_max_bytes(const config& c) {
  if (const auto it = c.kafka.librdkafka.find("message.max.bytes"); it != c.kafka.librdkafka.end()) {
    std::size_t limit = 0;
    const auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), limit);
    if (ec == std::errc{} && end == it->second.data() + it->second.size()) return limit;
  }
  return producer_message_max_bytes(static_cast<std::size_t>(c.worker.max_request_bytes));
}

config parse(std::string_view toml_text, const env_lookup& env, std::string_view source_name, sections which) {
  const toml::table root = parse_toml(toml_text, source_name);
  config c;
  for (const auto& [k, v] : root) {
    const std::string key(k.str());
    if (key != "kafka" && key != "worker" && key != "metrics" && key != "log" && key != "providers" &&
        key != "gateway") {
      fail(key + ": unknown section (known: kafka, worker, metrics, gateway, log, providers)");
    }
    if (!v.is_table()) fail(key + ": must be a table");
  }
  read_kafka(root, c, env);
  auto& w = c.worker;
  read_section(root["worker"].as_table(), "worker",
               {{"threads", &w.threads, 1, 256},
                {"max_in_flight", &w.max_in_flight, 1, 1000000},
                {"request_timeout_ms", &w.request_timeout_ms, 1, 600000},
                {"connect_timeout_ms", &w.connect_timeout_ms, 1, 600000},
                {"max_attempts", &w.max_attempts, 1, 100},
                {"retry_backoff_ms", &w.retry_backoff_ms, 0, 3600000},
                {"max_retry_backoff_ms", &w.max_retry_backoff_ms, 0, 3600000},
                {"max_request_bytes", &w.max_request_bytes, 64, 64 << 20},
                {"commit_interval_ms", &w.commit_interval_ms, 10, 60000},
                {"shutdown_grace_ms", &w.shutdown_grace_ms, 0, 600000},
                {"max_connections_per_host", &w.max_connections_per_host, 1, 100000},
                {"retry_topic_threshold_ms", &w.retry_topic_threshold_ms, 0, 86400000},
                {"bulk_share_percent", &w.bulk_share_percent, 1, 100},
                {"account_max_in_flight", &w.account_max_in_flight, 1, 1000000},
                {"dedupe_window_ms", &w.dedupe_window_ms, 0, 86400000},
                {"dedupe_max_ids", &w.dedupe_max_ids, 0, 10000000},
                {"max_request_age_ms", &w.max_request_age_ms, 1000, 86400000}},
               {{"ca_file", &w.ca_file}, {"rate_limit_scope", &w.rate_limit_scope}}, env);
  if (w.max_retry_backoff_ms < w.retry_backoff_ms) {
    fail("worker.max_retry_backoff_ms: " + std::to_string(w.max_retry_backoff_ms) + " is below worker.retry_backoff_ms (" +
         std::to_string(w.retry_backoff_ms) + "), the first back-off it caps");
  }
  // The drain does not poll the consumer: past max.poll.interval.ms the group evicts the worker,
  // its final commit is refused and everything finished during the drain is read again.
  {
    std::int64_t poll_interval = 300000;  // librdkafka's default
    if (const auto it = c.kafka.librdkafka.find("max.poll.interval.ms"); it != c.kafka.librdkafka.end()) {
      std::from_chars(it->second.data(), it->second.data() + it->second.size(), poll_interval);
    }
    if (w.shutdown_grace_ms >= poll_interval) {
      fail("worker.shutdown_grace_ms: " + std::to_string(w.shutdown_grace_ms) +
           " is not below the consumer's max.poll.interval.ms (" + std::to_string(poll_interval) +
           "): the group would evict the worker during its drain and refuse its final commit");
    }
  }
  if (w.rate_limit_scope != "group" && w.rate_limit_scope != "worker") {
    fail("worker.rate_limit_scope: '" + w.rate_limit_scope + "' is not one of group, worker");
  }
  // The worker re-produces a whole request to sendq.retry: a producer limit too small for one
  // would leave such a request unfinished with its offset never committed, so refuse it here.
  if (const auto it = c.kafka.librdkafka.find("message.max.bytes"); it != c.kafka.librdkafka.end()) {
    const auto need = static_cast<std::uint64_t>(w.max_request_bytes) + kafka_record_headroom_bytes;
    std::uint64_t limit = 0;
    const auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), limit);
    if (ec != std::errc{} || end != it->second.data() + it->second.size() || limit < need) {
      fail("kafka.librdkafka.message.max.bytes: '" + it->second + "' must be an integer of at least " +
           std::to_string(need) + " (worker.max_request_bytes + 64 KiB), or the worker could not re-produce its "
           "largest requests to the retry topic");
    }
  }
  read_section(root["metrics"].as_table(), "metrics", {}, {{"addr", &c.metrics.addr}}, env);
  read_gateway(root["gateway"].as_table(), c, env, which != sections::without_gateway_keys);
  read_section(root["log"].as_table(), "log", {}, {{"level", &c.log.level}, {"format", &c.log.format}}, env);
  if (c.log.level != "debug" && c.log.level != "info" && c.log.level != "warn" && c.log.level != "error") {
    fail("log.level: '" + c.log.level + "' is not one of debug, info, warn, error");
  }
  if (c.log.format != "json" && c.log.format != "text" && c.log.format != "auto") {
    fail("log.format: '" + c.log.format + "' is not one of json, text, auto");
  }
  if (which != sections::without_providers) read_accounts(root["providers"].as_table(), c, env);
  return c;
}

config load(const std::string& path, const env_lookup& env, sections which) {
  if (path.empty()) return parse("", env, "<defaults>", which);
  return parse(read_file(path), env, path, which);
}

config parse_kafka_only(std::string_view toml_text, const env_lookup& env, std::string_view source_name) {
  const toml::table root = parse_toml(toml_text, source_name);
  config c;
  if (const auto* kafka = root.get("kafka"); kafka && !kafka->is_table()) fail("kafka: must be a table");
  read_kafka(root, c, env);
  // And worker.max_request_bytes: the tools' producers take records as large as the worker's. The
  // rest of [worker] is the worker's to check.
  if (const auto* worker = root.get("worker"); worker && !worker->is_table()) fail("worker: must be a table");
  const toml::table* worker = root["worker"].as_table();
  std::vector<std::string> others;
  if (worker) {
    for (const auto& [k, v] : *worker) {
      if (k.str() != "max_request_bytes") others.emplace_back(k.str());
    }
  }
  read_section(worker, "worker", {{"max_request_bytes", &c.worker.max_request_bytes, 64, 64 << 20}}, {}, env,
               std::vector<std::string_view>(others.begin(), others.end()));
  return c;
}

config load_kafka_only(const std::string& path, const env_lookup& env) {
  return parse_kafka_only(read_file(path), env, path);
}

bool is_topic_name(std::string_view name) {
  const bool chars_ok = std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
           ch == '_' || ch == '-';
  });
  return chars_ok && !name.empty() && name.size() <= 249 && name != "." && name != "..";
}

}  // namespace sendq::config
