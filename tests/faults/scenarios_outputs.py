"""Fault scenarios of the output side (issue 11 phase 2): a syslog
receiver that stalls then resets, RELP against rsyslog killed with -9, a
full disk and a file deleted or rotated under the file output, a Kafka
outage beside a healthy file output, import with Kafka down, SIGTERM with
a stuck output, a full state disk.

Each drives the real binary (`import` or `run` against the emulator); the
faults are put in place by the test at a moment it controls (the proxy
holds, the broker is set down, the file system is full) before the agent
can get past them.
"""

import os

from faultlib import (Skip, count_row, expect, h, records, scenario, wait_for,
                      write_ndjson, yaml_config)


def syslog_out(port, **kw):
    o = {"name": "sl", "type": "syslog", "address": "127.0.0.1:%d" % port,
         "transport": "tcp", "framing": "octet-counting"}
    o.update(kw)
    return o


# ---------------------------------------------------------------------------
# defect 2: syslog

@scenario("syslog-stall-then-reset", "issue 11 defect 2")
def syslog_stall_reset(ctx):
    """2,400 records to a receiver behind a proxy that buffers 8 MiB,
    stops reading after 64 KiB, then resets the connection: import must not
    end while records sit unread at the receiver; every record arrives,
    duplicates within the resend window per broken connection."""
    n = 2400
    sink = ctx.syslog_sink()
    proxy = ctx.proxy(sink.port, rcvbuf=8 << 20)
    recs = records(n, "st", pad=600)
    inp = write_ndjson(os.path.join(ctx.dir, "in.ndjson"), recs)
    cfg = yaml_config(os.path.join(ctx.dir, "m365fwd.yaml"), os.path.join(ctx.dir, "state"),
                      [syslog_out(proxy.port, flush_timeout="60s")])
    proxy.hold_after(64 * 1024)
    imp = ctx.imports(cfg, [inp])
    proxy.wait_held(60)
    # the receiver side stalls with everything buffered: import ends
    # (claiming delivery) or waits for the receiver; then the reset
    wait_for(lambda: imp.done() or "waiting up to" in imp.stderr(), 60,
             "import to end or to wait for the receiver")
    ended_before_reset = imp.done()
    proxy.reset()
    proxy.resume()
    rc = imp.wait(120)
    if rc == 0:
        # what import says it delivered is at the receiver
        try:
            wait_for(lambda: len(set(sink.ids())) >= n, 30, "every record at the sink")
        except TimeoutError:
            pass
    row = count_row("syslog-stall-then-reset", [r["Id"] for r in recs], sink.ids(),
                    note="import exit %d%s; %d connections" % (
                        rc, " before the reset" if ended_before_reset else "",
                        proxy.stats()["accepted"]))
    expect(rc == 0, "import exited %d: %s", rc, imp.stderr()[-800:])
    # the bound: the resend window (4096 records) per broken connection
    expect(row.duplicates <= 4096 * max(1, proxy.stats()["resets"]),
           "%d duplicates", row.duplicates)
    return row
