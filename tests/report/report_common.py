"""What the report tests share: input records (the repository's samples plus
records whose fields carry markup), running the binary, and a small
validator for the subset of JSON Schema docs/report.schema.json uses."""

import json
import os
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
SAMPLES = [os.path.join(SRC, "samples", "contoso-week.json"),
           os.path.join(SRC, "samples", "purview-export.csv")]
SCHEMA = os.path.join(SRC, "docs", "report.schema.json")
PERIOD = ["--from", "2026-03-01", "--to", "2026-03-10"]
TENANT = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"

# attacker-controlled fields: they must stay text in every format
ACTOR = "<script>alert('actor')</script>@evil.example"
FILE = "\"><script>document.title='pwned'</script>.xlsx"
AGENT = "PowerShell/7 <img src=x onerror=alert(1)>"
ALERT = "</style></table><script>alert(2)</script>"
TEXTS = [ACTOR, FILE, ALERT]


def hostile_records():
    """Records (NDJSON lines) that raise tags, with markup in their fields."""
    base = {"OrganizationId": TENANT, "ResultStatus": "Success", "UserType": 0}
    recs = [
        dict(base, Id="bad-1", CreationTime="2026-03-05T10:00:00", RecordType=6,
             Operation="FileDownloaded", Workload="SharePoint", UserId=ACTOR,
             ClientIP="198.51.100.66", UserAgent=AGENT, SourceFileName=FILE,
             ObjectId=FILE, SiteUrl="https://contoso.sharepoint.com/sites/x"),
        dict(base, Id="bad-2", CreationTime="2026-03-05T10:05:00", RecordType=40,
             Operation="AlertTriggered", Workload="SecurityComplianceCenter",
             UserId="SecurityComplianceAlerts", UserType=4, Name=ALERT,
             ObjectId=ALERT, Severity="High", Category="ThreatManagement"),
    ]
    return "".join(json.dumps(r) + "\n" for r in recs)


def write_inputs(tmp):
    """The samples plus the hostile records; returns the input paths."""
    path = os.path.join(tmp, "hostile.ndjson")
    with open(path, "w", encoding="utf-8") as f:
        f.write(hostile_records())
    return SAMPLES + [path]


def run(binary, *args, stdin=None, timeout=120):
    return subprocess.run([binary, *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout)


# ---- a JSON Schema subset ------------------------------------------------

TYPES = {"object": dict, "array": list, "string": str, "null": type(None),
         "boolean": bool}


def _type_ok(v, t):
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, TYPES[t])


def validate(v, schema, root=None, where="$"):
    """Errors of v against schema (type, const, enum, oneOf, $ref to
    #/$defs, required, properties, additionalProperties false, items,
    minItems, maxItems, minimum, maximum, pattern)."""
    root = root or schema
    errs = []
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return validate(v, root["$defs"][name], root, where)
    if "type" in schema:
        ts = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(v, t) for t in ts):
            return ["%s: %r is not %s" % (where, v, "/".join(ts))]
    if "const" in schema and v != schema["const"]:
        errs.append("%s: %r is not %r" % (where, v, schema["const"]))
    if "enum" in schema and v not in schema["enum"]:
        errs.append("%s: %r not in %r" % (where, v, schema["enum"]))
    if "oneOf" in schema:
        ok = [s for s in schema["oneOf"] if not validate(v, s, root, where)]
        if len(ok) != 1:
            errs.append("%s: %r matches %d of oneOf" % (where, v, len(ok)))
    if isinstance(v, dict):
        for k in schema.get("required", []):
            if k not in v:
                errs.append("%s: %s missing" % (where, k))
        props = schema.get("properties", {})
        for k, x in v.items():
            if k in props:
                errs += validate(x, props[k], root, "%s.%s" % (where, k))
            elif schema.get("additionalProperties") is False:
                errs.append("%s: unexpected %s" % (where, k))
    if isinstance(v, list):
        if len(v) < schema.get("minItems", 0):
            errs.append("%s: fewer than %d items" % (where, schema["minItems"]))
        if "maxItems" in schema and len(v) > schema["maxItems"]:
            errs.append("%s: more than %d items" % (where, schema["maxItems"]))
        for i, x in enumerate(v):
            if "items" in schema:
                errs += validate(x, schema["items"], root, "%s[%d]" % (where, i))
    if _type_ok(v, "number"):
        if "minimum" in schema and v < schema["minimum"]:
            errs.append("%s: %r < %r" % (where, v, schema["minimum"]))
        if "maximum" in schema and v > schema["maximum"]:
            errs.append("%s: %r > %r" % (where, v, schema["maximum"]))
    if isinstance(v, str) and "pattern" in schema and not re.search(schema["pattern"], v):
        errs.append("%s: %r does not match %s" % (where, v, schema["pattern"]))
    return errs


def load_schema():
    with open(SCHEMA, encoding="utf-8") as f:
        return json.load(f)
