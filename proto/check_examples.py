#!/usr/bin/python3
"""Checks proto/examples against the JSON Schemas in proto/.

- requests/valid/*.json and requests/provider_invalid/*.json must pass send_request.schema.json
  (provider_invalid ones have the right shape; a provider's own limits reject them);
- requests/invalid/* must fail: not strict JSON (duplicate keys, NaN, not JSON at all) or not
  the schema;
- every invalid and provider_invalid example has a <name>.expect.json {"kind", "field"};
- results/*.json must pass delivery_result.schema.json.

Uses Debian's python3-jsonschema (apt-get install python3-jsonschema). Prints one line per
failure and ends with "N passed, N failed"; exits 1 when anything failed.
"""
import json
import pathlib
import sys

import jsonschema

HERE = pathlib.Path(__file__).resolve().parent
EXAMPLES = HERE / "examples"


def strict_load(text):
    """json.loads that, like the sendq decoder, refuses duplicate keys and NaN/Infinity."""
    def no_duplicates(pairs):
        seen = {}
        for key, value in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen[key] = value
        return seen

    def no_constants(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)


def validator_for(name):
    schema = json.loads((HERE / name).read_text(encoding="utf-8"))
    cls = jsonschema.Draft202012Validator
    cls.check_schema(schema)
    # JSON Schema counts 2.0 as an integer; the decoder (get_int64) does not: neither do we.
    checker = cls.TYPE_CHECKER.redefine(
        "integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))
    return jsonschema.validators.extend(cls, type_checker=checker)(schema)


def messages(dir_name):
    folder = EXAMPLES / dir_name
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and ".expect." not in p.name and p.suffix in (".json", ".txt"))


def problems(validator, path):
    """Why `path` is not a valid instance, or [] when it is."""
    try:
        instance = strict_load(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        return [f"not strict JSON: {e}"]
    out = []
    for e in validator.iter_errors(instance):
        # anyOf/oneOf failures say which branch wanted what only in their context.
        for sub in [e] + list(e.context or []):
            out.append(f"{'/'.join(map(str, sub.absolute_path)) or '(root)'}: {sub.message}")
    return out


def mentions(problem, field):
    """True when a problem line is about `field` ("body.url": path body/url, or 'url')."""
    leaf = field.split(".")[-1]
    return problem.startswith(field.replace(".", "/") + ":") or f"'{leaf}'" in problem


def check_expect(path):
    expect = path.with_name(path.stem + ".expect.json")
    if not expect.exists():
        return f"no sidecar {expect.name}"
    e = strict_load(expect.read_text(encoding="utf-8"))
    if set(e) != {"kind", "field"} or not all(isinstance(v, str) and v for v in e.values()):
        return f"{expect.name} must be {{\"kind\": ..., \"field\": ...}}"
    return None


def main():
    requests = validator_for("send_request.schema.json")
    results = validator_for("delivery_result.schema.json")
    passed, failed = 0, 0

    def report(ok, path, why=""):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {path.relative_to(HERE)}: {why}")

    ids = {}
    for path in messages("requests/valid"):
        why = problems(requests, path)
        if not why:
            request_id = strict_load(path.read_text(encoding="utf-8"))["id"]
            if request_id in ids:
                why = [f"id {request_id} also in {ids[request_id]}"]
            ids[request_id] = path.name
        report(not why, path, "; ".join(why))
    for path in messages("requests/provider_invalid"):
        why = problems(requests, path)
        sidecar = check_expect(path)
        report(not why and not sidecar, path, "; ".join(why + ([sidecar] if sidecar else [])))
    for path in messages("requests/invalid"):
        why = problems(requests, path)
        sidecar = check_expect(path)
        if not why:
            report(False, path, "passes the schema but should not")
        elif sidecar:
            report(False, path, sidecar)
        else:
            # It must fail for the reason its sidecar names, not for an incidental one.
            field = strict_load(path.with_name(path.stem + ".expect.json").read_text())["field"]
            whole = field == "message" and (why[0].startswith("not strict JSON")
                                            or why[0].startswith("(root): ["))
            named = whole or any(mentions(w, field) for w in why)
            report(named, path, f"fails, but not on {field}: " + "; ".join(why))
    for path in messages("results"):
        why = problems(results, path)
        report(not why, path, "; ".join(why))

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
