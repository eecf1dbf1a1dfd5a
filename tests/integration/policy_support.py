"""Shared pieces of the delivery-policy tests: a worker configuration and request matching."""
import json
import os

from expected_calls import expected_call


def write_config(workdir, worker=None, accounts_extra="", retry_ambiguous=False, gewe_rate_limit=None):
    """A worker config like deploy/sendq.example.toml with [worker] overrides and extra accounts;
    `gewe_rate_limit` ("100/1s") limits the default gewe account."""
    lines = ["[worker]"]
    for k, v in (worker or {}).items():
        lines.append(f"{k} = {v}")
    ra = "true" if retry_ambiguous else "false"
    lines.append("""
[providers.sender.default]
base_url = "http://127.0.0.1:1"
api_version = "01"
client = "demo-client"
channel = "demo-channel"
version = "2.0"
sign = "demo-sign"
""")
    limit = {"rate_limit": gewe_rate_limit} if gewe_rate_limit else {}
    lines.append(gewe_account("default", "http://127.0.0.1:1", retry_ambiguous=retry_ambiguous, **limit))
    lines.append(f"""[providers.im.default]
base_url = "http://127.0.0.1:1"
appid = "JH"
retry_ambiguous = {ra}
[providers.gps.default]
base_url = "http://127.0.0.1:1"
token = "demo-gps-token"
app_id = "demo-gps-app"
retry_ambiguous = {ra}
""")
    lines.append(accounts_extra)
    path = os.path.join(workdir, "sendq.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def gewe_account(name, base_url, **settings):
    """A [providers.gewe.<name>] table for write_config's accounts_extra: the demo credentials
    unless given, and `settings` (rate_limit="100/1s", follow_redirects=1, ...) as TOML values."""
    values = {"base_url": base_url, "token": "demo-gewe-token", "app_id": "demo-gewe-app", **settings}
    bad = [k for k, v in values.items() if not isinstance(v, (str, int))]  # (bool is an int)
    assert not bad, f"gewe_account writes strings, integers and booleans only, not {bad}"
    return "\n" + "\n".join([f"[providers.gewe.{name}]"] +
                             [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in values.items()]) + "\n"


def results_by_id(results):
    """{id: [results in topic order]} of (key, value, _) records of sendq.results."""
    out = {}
    for _, v, _ in results:
        r = json.loads(v)
        out.setdefault(r["id"], []).append(r)
    return out


def canonical(body):
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


def calls_by_request(requests, sim_records):
    """{request id: [simulator records in arrival order]} matched by the exact documented body."""
    wanted = {}
    for r in requests:
        _, _, _, body = expected_call(r)
        key = (expected_call(r)[0], canonical(body))
        assert key not in wanted, f"two requests with the same provider call: {r['id']}"
        wanted[key] = r["id"]
    out = {r["id"]: [] for r in requests}
    for x in sim_records:
        try:
            body = json.loads(x["body"])
        except ValueError:
            continue
        rid = wanted.get((x["path"], canonical(body)))
        if rid is not None:
            out[rid].append(x)
    return out
