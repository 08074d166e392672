#!/usr/bin/env python3
"""CLI contract of `m365fwd` (run by meson: python3 test_cli.py <m365fwd>).

Exit codes 0/1/2, --help for every command, stdin vs files, counts, the
format of error lines, --keep-raw, --schema raw, --summary, and a real check
of streaming: a ~20 MB content blob holding a multi-MB record must be
normalized with a peak RSS under 32 MB.
"""
import calendar
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

BIN = None
TMP = None
FAILS = []

TENANT = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


def rec(i, op="UserLoggedIn", rt=15, **kw):
    r = {"CreationTime": "2026-03-02T08:%02d:%02d" % (i // 60 % 60, i % 60),
         "Id": "00000000-0000-4000-8000-%012d" % i, "Operation": op,
         "OrganizationId": TENANT, "RecordType": rt, "ResultStatus": "Success",
         "UserKey": "k%d" % i, "UserType": 0, "Version": 1,
         "Workload": "AzureActiveDirectory", "ClientIP": "198.51.100.%d" % (i % 250),
         "UserId": "user%d@contoso.com" % i}
    r.update(kw)
    return r


def dumps(r):
    return json.dumps(r, separators=(",", ":"))


def write(name, text, mode="w"):
    path = os.path.join(TMP, name)
    with open(path, mode) as f:
        f.write(text)
    return path


def run(args, stdin=None, check_rc=None):
    p = subprocess.run([BIN] + args, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=300)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if check_rc is not None and p.returncode != check_rc:
        raise AssertionError("%s: exit %d, want %d\nstderr: %s"
                             % (" ".join(args), p.returncode, check_rc, err[:2000]))
    return p.returncode, out, err


def lines(out):
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: %r != %r" % (what, a, b))


def ok(cond, what):
    if not cond:
        raise AssertionError(what)


# ---- tests ------------------------------------------------------------------

def test_version_and_help():
    rc, out, _ = run(["--version"], check_rc=0)
    ok(re.match(r"m365fwd \d+\.\d+\.\d+", out), "version text: %r" % out)
    rc, out, _ = run(["--help"], check_rc=0)
    ok("normalize" in out and "Usage" in out, "main help lists normalize")
    cmds = re.findall(r"^  (\w+)\s{2,}", out.split("Commands:")[1], re.M)
    ok("normalize" in cmds and len(cmds) >= 2, "command list: %r" % cmds)
    for c in cmds:
        rc, out2, _ = run([c, "--help"], check_rc=0)
        ok(("m365fwd " + c) in out2, "%s --help shows its usage" % c)
        rc, out3, _ = run(["help", c], check_rc=0)
        eq(out3, out2, "help %s == %s --help" % (c, c))
    rc, out, _ = run(["help", "normalize"], check_rc=0)
    for opt in ("--schema", "--input", "--keep-raw", "--content-type",
                "--summary", "--tags-file", "--ocsf-file", "--ecs-file",
                "--max-record-size", "--domains"):
        ok(opt in out, "normalize help mentions " + opt)


def test_usage_errors():
    cases = [
        [], ["bogus"], ["--bogus"], ["normalize", "--bogus"],
        ["normalize", "--schema", "xml"], ["normalize", "--input", "yaml"],
        ["normalize", "--schema"], ["normalize", "--max-record-size", "lots"],
        ["normalize", "--content-type", "Audit.Nope"], ["help", "bogus"],
        ["normalize", "--domains", "user@contoso.com"], ["normalize", "--domains", "*.contoso.com"],
        ["version", "extra"],
    ]
    for args in cases:
        rc, out, err = run(args, stdin=b"")
        eq(rc, 2, "exit code of %r" % args)
        ok("Usage" in err, "usage on stderr for %r" % args)
        eq(out, "", "nothing on stdout for %r" % args)


def test_shared_options():
    """The options run, status, import and report share (mf_cli_getopt):
    the same message for each mistake, the usage after it, exit 2."""
    cases = [
        (["status"], "m365fwd status: -c FILE is required"),
        (["run", "--once"], "m365fwd run: -c FILE is required"),
        (["import", "-"], "m365fwd import: -c FILE is required"),
        (["status", "-c", "x.yaml", "extra"], "m365fwd status: unexpected argument 'extra'"),
        (["run", "-c", "x.yaml", "extra"], "m365fwd run: unexpected argument 'extra'"),
        (["status", "--bogus"], "m365fwd status: unknown option '--bogus'"),
        (["run", "-x"], "m365fwd run: unknown option '-x'"),
        (["import", "--bogus", "-c", "x.yaml"], "m365fwd import: unknown option '--bogus'"),
        (["report", "--bogus"], "m365fwd report: unknown option '--bogus'"),
        (["report", "--days=0"], "m365fwd report: bad value '0' for --days=0"),
    ]
    for args, msg in cases:
        rc, out, err = run(args, stdin=b"")
        eq(rc, 2, "exit code of %r" % args)
        eq(err.splitlines()[0] if err else "", msg, "message of %r" % args)
        ok("Usage: m365fwd " + args[0] in err, "usage on stderr for %r" % args)
        eq(out, "", "nothing on stdout for %r" % args)
    # -h after -c: the help, exit 0, nothing read
    for c in ("run", "status", "import", "report"):
        rc, out, err = run([c, "-c", "/nonexistent.yaml", "-h"])
        eq(rc, 0, "exit code of %s -c ... -h" % c)
        ok(out.startswith("Usage: m365fwd " + c), "%s -h shows its usage" % c)
        eq(err, "", "nothing on stderr for %s -h" % c)


def test_stdin_vs_file():
    recs = [rec(i) for i in range(5)]
    text = "".join(dumps(r) + "\n" for r in recs)
    path = write("five.ndjson", text)
    _, out_file, err1 = run(["normalize", path], check_rc=0)
    _, out_stdin, err2 = run(["normalize"], stdin=text.encode(), check_rc=0)
    _, out_dash, _ = run(["normalize", "-"], stdin=text.encode(), check_rc=0)
    eq(out_file, out_stdin, "stdin output == file output")
    eq(out_dash, out_stdin, "'-' == stdin")
    ev = lines(out_file)
    eq(len(ev), 5, "one event per record")
    eq([e["metadata"]["uid"] for e in ev], [r["Id"] for r in recs], "order kept")
    eq(err1, "", "no stderr when all is well")
    # two files: events of both, in order
    p2 = write("blob.json", json.dumps([rec(10), rec(11)], indent=4))
    _, out, _ = run(["normalize", path, p2], check_rc=0)
    eq(len(lines(out)), 7, "two files")


def test_ocsf_basics():
    r = rec(1, ErrorNumber="0")
    path = write("one.json", "[" + dumps(r) + "]")
    _, out, _ = run(["normalize", "--schema", "ocsf", path], check_rc=0)
    (e,) = lines(out)
    eq(e["metadata"]["version"], "1.8.0", "metadata.version")
    eq(e["metadata"]["uid"], r["Id"], "metadata.uid")
    eq(e["metadata"]["tenant_uid"], TENANT, "metadata.tenant_uid")
    eq(e["metadata"]["event_code"], "UserLoggedIn", "metadata.event_code")
    eq(e["type_uid"], e["class_uid"] * 100 + e["activity_id"], "type_uid")
    want_ms = calendar.timegm(time.strptime(r["CreationTime"],
                                            "%Y-%m-%dT%H:%M:%S")) * 1000
    eq(e["time"], want_ms, "time from CreationTime as UTC")
    ok(e["severity_id"] >= 1, "severity_id at least 1")
    # unknown operation: API Activity, activity 99, never dropped
    path = write("unk.json", dumps(rec(2, op="TotallyNewOperation", rt=9999)))
    _, out, _ = run(["normalize", path], check_rc=0)
    (e,) = lines(out)
    eq((e["class_uid"], e["activity_id"], e["type_uid"]), (6003, 99, 600399),
       "unmapped operation")


def test_rejects_and_locations():
    good = dumps(rec(1))
    text = (good + "\n"                                     # 1 ok
            + "[" + good + ",42," + good + "]\n"            # 2 ok, idx1 bad, ok
            + "garbage here\n"                              # 3 bad
            + '{"Id":"x","Operation":"Send","A":"trunc\n'   # 4 bad
            + good + "\n"                                   # 5 ok
            + '{"Id":}\n')                                  # 6 bad JSON
    path = write("mixed.ndjson", text)
    rc, out, err = run(["normalize", path])
    eq(rc, 1, "exit 1 when a record is rejected")
    eq(len(lines(out)), 4, "good records still normalized")
    errs = err.strip().splitlines()
    pat = re.compile(r"^(.+):(\d+)(?: \(index (\d+)\))?: (.+)$")
    locs = []
    for l in errs:
        m = pat.match(l)
        ok(m, "error line format: %r" % l)
        eq(m.group(1), path, "file name in error line")
        locs.append((int(m.group(2)), m.group(3) and int(m.group(3))))
    eq(locs, [(2, 1), (3, None), (4, None), (6, None)], "error locations")
    # a missing file is reported, the others still run
    rc, out, err = run(["normalize", os.path.join(TMP, "nope.json"), path])
    eq(rc, 1, "missing file")
    ok("nope.json" in err, "missing file named")
    eq(len(lines(out)), 4, "other file still normalized")
    # truncated blob
    path = write("trunc.json", "[" + good + "," + good[:40])
    rc, out, err = run(["normalize", path])
    eq(rc, 1, "truncated blob")
    eq(len(lines(out)), 1, "record before the truncation kept")
    ok(re.search(r"trunc\.json:1 \(index 1\): (truncated|unterminated)", err),
       err)


def test_auto_array_layouts():
    """--input auto reads every layout of a JSON array as one array and
    still tells a truncated NDJSON line from a record going on."""
    recs = [dumps(rec(i)) for i in range(40, 44)]
    layouts = {
        "compact": "[" + ",".join(recs) + "]",
        "comma-leading": "[" + "\n,".join(recs) + "\n]\n",
        "comma-trailing": "[" + ",\n".join(recs) + "]\n",
        "crlf-comma-leading": "[" + "\r\n, ".join(recs) + "\r\n]\r\n",
        "pretty": json.dumps([rec(i) for i in range(40, 44)], indent=2),
    }
    want = [rec(i)["Id"] for i in range(40, 44)]
    for name, text in layouts.items():
        path = write("layout-%s.json" % name, text)
        for fmt in ("auto", "json"):
            rc, out, err = run(["normalize", "--input", fmt, path])
            eq((rc, err), (0, ""), "%s as %s: exit and errors" % (name, fmt))
            eq([e["metadata"]["uid"] for e in lines(out)], want,
               "%s as %s: records" % (name, fmt))
    # bad input: a cut NDJSON line that ends after ',' and then records;
    # nothing after it is lost and the cut line is named
    good = [dumps(rec(i)) for i in range(50, 53)]
    cut = good[1][:good[1].index(',"Operation"') + 1]
    text = (good[0] + "\n" + cut + "\n" + good[2] + "\n"
            + "[" + good[0] + ",\n" + good[1] + "\n" + "[" + good[2] + "]\n")
    path = write("cut.ndjson", text)
    rc, out, err = run(["normalize", path])
    eq(rc, 1, "cut line: exit 1")
    eq([e["metadata"]["uid"] for e in lines(out)],
       [rec(50)["Id"], rec(52)["Id"], rec(50)["Id"], rec(51)["Id"], rec(52)["Id"]],
       "records around the cut line")
    errs = err.strip().splitlines()
    eq(len(errs), 2, "two errors: %r" % errs)
    ok(errs[0].startswith(path + ":2: truncated record"), errs[0])
    ok(errs[1].startswith(path + ":4: unterminated array"), errs[1])


def test_domains():
    """--domains: the tenant's accepted domains decide inside/outside; by
    default each record's own domains do (so a partner admin's domain is
    internal to the record)."""
    r = rec(60, op="Set-Mailbox", rt=1, Workload="Exchange", ResultStatus="True",
            UserType=2, UserId="tech@partner.example",
            OrganizationName="contoso.onmicrosoft.com",
            Parameters=[{"Name": "Identity", "Value": "ceo@contoso.com"},
                        {"Name": "ForwardingSmtpAddress",
                         "Value": "smtp:drop@partner.example"}])
    path = write("fwd.ndjson", dumps(r) + "\n")

    def sev(args):
        _, out, _ = run(["normalize", "--schema", "raw"] + args + [path], check_rc=0)
        (e,) = lines(out)
        eq(e["m365fwd"]["tags"], ["behavior.mailbox_smtp_forwarding"], "tags")
        return e["m365fwd"]["severity"]
    eq(sev([]), 4, "without --domains partner.example is the actor's own domain")
    eq(sev(["--domains", "contoso.com, contoso.onmicrosoft.com"]), 5,
       "outside the accepted domains")
    eq(sev(["--domains", "contoso.com", "--domains", "partner.example"]), 4,
       "repeated --domains add up")


def test_keep_raw():
    r = rec(3, Extra={"a": [1, 2]})
    src = dumps(r)
    path = write("raw.ndjson", src + "\n")
    _, out, _ = run(["normalize", "--keep-raw", path], check_rc=0)
    (e,) = lines(out)
    ok("raw_data" in e, "OCSF raw_data with --keep-raw")
    eq(json.loads(e["raw_data"]), r, "raw_data is the record")
    _, out, _ = run(["normalize", path], check_rc=0)
    ok("raw_data" not in lines(out)[0], "no raw_data by default")
    _, out, _ = run(["normalize", "--schema", "ecs", "--keep-raw", path],
                    check_rc=0)
    (e,) = lines(out)
    eq(json.loads(e["event"]["original"]), r, "ECS event.original")


def test_schema_raw():
    r = rec(4, op="Set-AdminAuditLogConfig", rt=1, Workload="Exchange",
            Parameters=[{"Name": "UnifiedAuditLogIngestionEnabled",
                         "Value": "False"}])
    path = write("rawschema.ndjson", dumps(r) + "\n")
    _, out, _ = run(["normalize", "--schema", "raw", path], check_rc=0)
    (e,) = lines(out)
    m = e.pop("m365fwd")
    eq(e, r, "raw keeps the record unchanged")
    ok(isinstance(m.get("tags"), list) and "monitor.ual_disabled" in m["tags"],
       "raw m365fwd.tags: %r" % m)
    ok("monitoring_response" in m.get("areas", []), "raw m365fwd.areas")
    ok(m.get("severity", 0) >= 4, "raw m365fwd.severity")


def test_csv_input():
    r1, r2 = rec(5), rec(6, op="FileDownloaded", rt=6, Workload="SharePoint")

    def q(s):
        return '"' + s.replace('"', '""') + '"'
    text = ("\ufeffRecordId,CreationDate,RecordType,Operation,UserId,AuditData\r\n"
            + "1,x,y,UserLoggedIn,u," + q(dumps(r1)) + "\r\n"
            + '2,"multi\nline",y,FileDownloaded,u,' + q(dumps(r2)) + "\r\n")
    path = write("export.csv", text)
    for args in (["normalize", path], ["normalize", "--input", "csv", path]):
        _, out, _ = run(args, check_rc=0)
        eq([e["metadata"]["uid"] for e in lines(out)], [r1["Id"], r2["Id"]],
           "CSV records")
    # the same bytes read as NDJSON are garbage: rejected, exit 1
    rc, _, err = run(["normalize", "--input", "ndjson", path])
    eq(rc, 1, "csv read as ndjson")


def test_summary():
    recs = [rec(i, op="UserLoginFailed", ResultStatus="Failed",
                ErrorNumber="50126") for i in range(3)]
    path = write("sum.ndjson", "".join(dumps(r) + "\n" for r in recs)
                 + "oops\n")
    rc, out, err = run(["normalize", "--summary", path])
    eq(rc, 1, "summary run with one bad line")
    ok(re.search(r"records read:\s+4", err), "read count: " + err)
    ok(re.search(r"normalized:\s+3", err), "normalized count")
    ok(re.search(r"rejected:\s+1", err), "rejected count")
    ok("identity.login_failed" in err, "tag table")
    ok("3002" in err, "class table")
    rc, out, err = run(["normalize", path])
    ok("records read" not in err, "no summary without --summary")


def test_table_errors():
    bad = write("badtags.yaml", "version: 1\ntags:\n  - id: x.y\n    bogus: 1\n")
    rc, out, err = run(["normalize", "--tags-file", bad], stdin=b"")
    eq(rc, 2, "a bad table is a start-up error")
    ok(re.search(r"badtags\.yaml:\d+", err), "table error names file:line: " + err)
    rc, out, err = run(["normalize", "--ocsf-file", os.path.join(TMP, "none.yaml")],
                       stdin=b"")
    eq(rc, 2, "missing table file")


def test_output_file():
    path = write("o.ndjson", dumps(rec(1)) + "\n" + dumps(rec(2)) + "\n")
    dest = os.path.join(TMP, "events.out")
    rc, out, _ = run(["normalize", "-o", dest, path], check_rc=0)
    eq(out, "", "nothing on stdout with -o")
    with open(dest) as f:
        eq(len(lines(f.read())), 2, "events in the output file")


def test_max_record_size():
    big = rec(7, Blob="x" * 300000)
    text = dumps(rec(1)) + "\n" + dumps(big) + "\n" + dumps(rec(2)) + "\n"
    path = write("limit.ndjson", text)
    rc, out, err = run(["normalize", "--max-record-size", "100k", path])
    eq(rc, 1, "over the limit is a reject")
    eq(len(lines(out)), 2, "records around it kept")
    ok(re.search(r"limit\.ndjson:2: .*maximum record size", err), err)
    _, out, _ = run(["normalize", "--max-record-size", "1M", path], check_rc=0)
    eq(len(lines(out)), 3, "under a bigger limit")


def test_robust_bytes():
    # invalid UTF-8, numbers as strings, odd ClientIP forms: never lost
    recs = [rec(1, ClientIP="[2001:db8::1]:443"), rec(2, ClientIP="::ffff:10.1.2.3"),
            rec(3, ClientIP=None), rec(4, ClientIP=""), rec(5, RecordType="15")]
    data = b"".join(dumps(r).encode() + b"\n" for r in recs)
    data += dumps(rec(6)).encode().replace(b"user6", b"us\xff\xfeer6") + b"\n"
    for schema in ("ocsf", "ecs", "raw"):
        rc, out, err = run(["normalize", "--schema", schema], stdin=data)
        eq(rc, 0, "%s robust records: %s" % (schema, err))
        eq(len(lines(out)), 6, "%s: all records kept" % schema)


def peak_rss_kb(args, stdout_path):
    """Run BIN in a forked child; return the grandchild's peak RSS in kB."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        code = 0
        try:
            with open(stdout_path, "wb") as f:
                p = subprocess.run([BIN] + args, stdout=f,
                                   stderr=subprocess.DEVNULL, timeout=600)
            ru = resource.getrusage(resource.RUSAGE_CHILDREN)
            os.write(wfd, ("%d %d" % (p.returncode, ru.ru_maxrss)).encode())
        except BaseException:
            code = 1
        os._exit(code)
    os.close(wfd)
    data = b""
    while True:
        chunk = os.read(rfd, 100)
        if not chunk:
            break
        data += chunk
    os.close(rfd)
    os.waitpid(pid, 0)
    rc, rss = (int(x) for x in data.split())
    return rc, rss


def test_streaming_rss():
    path = os.path.join(TMP, "big-blob.json")
    n = 0
    with open(path, "w") as f:
        f.write("[\n")
        for i in range(8000):
            f.write(dumps(rec(i, Pad="p" * 1000)) + ",\n")
            n += 1
            if i == 4000:
                # one multi-MB record in the middle of the array
                f.write(dumps(rec(99999999, Notes="n" * (4 << 20))) + ",\n")
                n += 1
            if i % 100 == 0:
                # and many big ones: per-record memory must be given back
                f.write(dumps(rec(50000000 + i, Notes="m" * 300000)) + ",\n")
                n += 1
        f.write(dumps(rec(8001)) + "\n]\n")
        n += 1
    size = os.path.getsize(path)
    ok(size > 20 << 20, "blob is over 20 MB (%d)" % size)
    out = os.path.join(TMP, "big-out.ndjson")
    rc, rss = peak_rss_kb(["normalize", path], out)
    eq(rc, 0, "big blob normalized")
    count = 0
    with open(out, "rb") as f:
        for _ in f:
            count += 1
    eq(count, n, "every record of the big blob")
    os.unlink(out)
    print("# streaming: %d MB blob, peak RSS %.1f MB" % (size >> 20, rss / 1024))
    if sanitized():
        print("# sanitizer build: RSS bound not checked (shadow memory)")
        return
    ok(rss < 32 * 1024, "peak RSS %d kB >= 32 MB: not streaming" % rss)


def sanitized():
    """True when BIN is built with AddressSanitizer (RSS is meaningless)."""
    with open(BIN, "rb") as f:
        return b"__asan_init" in f.read()


def main():
    global BIN, TMP
    if len(sys.argv) < 2:
        print("usage: test_cli.py <m365fwd binary>", file=sys.stderr)
        return 2
    BIN = os.path.abspath(sys.argv[1])
    tests = [(k, v) for k, v in sorted(globals().items())
             if k.startswith("test_") and callable(v)]
    only = sys.argv[2:]
    with tempfile.TemporaryDirectory(prefix="m365fwd-cli-") as TMP:
        print("1..%d" % len(tests))
        for i, (name, fn) in enumerate(tests, 1):
            if only and name not in only:
                print("ok %d - %s # SKIP not selected" % (i, name))
                continue
            try:
                fn()
                print("ok %d - %s" % (i, name))
            except Exception as e:   # report all, fail at the end
                FAILS.append(name)
                print("not ok %d - %s" % (i, name))
                for l in str(e).splitlines() or [repr(e)]:
                    print("#   " + l)
            sys.stdout.flush()
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
