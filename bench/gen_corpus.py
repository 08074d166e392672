#!/usr/bin/env python3
"""Build the benchmark corpora from the project's own realistic records.

Sources (read only, in this order):
  tests/data/golden/*.in.json, samples/*.{json,ndjson,csv}
                                                 the repo's realistic records
  bench/seed/*.ndjson                            fallback when those are empty
                                                 (or always with --with-seed)
  ../shared/corpus/det-eng-samples (or $MF_SHARED/corpus/det-eng-samples)
                                                 real attack traces, when present

Every source file may be one JSON value (object or array), NDJSON, a
PowerShell Search-UnifiedAuditLog export (objects with an AuditData member),
or a Purview CSV export (AuditData column). Only well-formed records with
CreationTime and Operation are used; the robustness fixtures (broken UTF-8,
truncated JSON, multi-MB records) are not realistic traffic and are skipped.

Outputs in --out:
  corpus.ndjson        --records records, one per line, fresh Ids
  corpus-array.json    one compact JSON array (a single line) of about
                       --array-mb MB, fresh Ids
  manifest.json        counts, sizes, sources; re-used when nothing changed
"""

import argparse
import csv
import glob
import hashlib
import io
import json
import os
import random
import sys

MAX_RECORD_BYTES = 256 * 1024
GEN_VERSION = 1


def log(msg):
    print("gen_corpus: " + msg, file=sys.stderr)


def records_from_value(v):
    """Yield audit records from a parsed JSON value."""
    if isinstance(v, list):
        for x in v:
            yield from records_from_value(x)
        return
    if not isinstance(v, dict):
        return
    ad = v.get("AuditData")
    if ad is not None:
        if isinstance(ad, str):
            try:
                ad = json.loads(ad)
            except ValueError:
                return
        yield from records_from_value(ad)
        return
    yield v


def records_from_text(text, path):
    """Yield records from a whole file's text (JSON, NDJSON or CSV)."""
    if path.lower().endswith(".csv"):
        try:
            rows = csv.DictReader(io.StringIO(text))
            for row in rows:
                ad = row.get("AuditData")
                if not ad:
                    continue
                try:
                    yield from records_from_value(json.loads(ad))
                except ValueError:
                    continue
        except csv.Error:
            return
        return
    try:
        yield from records_from_value(json.loads(text))
        return
    except ValueError:
        pass
    for line in text.splitlines():
        line = line.strip().rstrip(",")
        if not line or line in ("[", "]"):
            continue
        try:
            yield from records_from_value(json.loads(line))
        except ValueError:
            continue


def usable(rec):
    if not isinstance(rec.get("CreationTime"), str):
        return False
    if not isinstance(rec.get("Operation"), str):
        return False
    return len(json.dumps(rec)) <= MAX_RECORD_BYTES


def collect(files):
    """Return (unique records, per-file counts)."""
    seen = set()
    out = []
    per_file = []
    for path in files:
        try:
            with open(path, "rb") as f:
                raw = f.read()
            text = raw.decode("utf-8-sig")
        except (OSError, UnicodeDecodeError):
            per_file.append((path, 0))
            continue
        n = 0
        for rec in records_from_text(text, path):
            if not usable(rec):
                continue
            key = rec.get("Id")
            if not isinstance(key, str):
                key = json.dumps(rec, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            out.append(rec)
            n += 1
        per_file.append((path, n))
    return out, per_file


def fingerprint(files):
    h = hashlib.sha256()
    for path in files:
        st = os.stat(path)
        h.update(("%s\0%d\0%d\n" % (path, st.st_size, int(st.st_mtime)))
                 .encode())
    return h.hexdigest()


def fresh_id(rng):
    x = "%032x" % rng.getrandbits(128)
    # RFC 4122 version 4 layout
    return "%s-%s-4%s-%x%s-%s" % (x[0:8], x[8:12], x[13:16],
                                  8 | (int(x[16], 16) & 3), x[17:20], x[20:32])


def encoder():
    enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    return enc.encode


def write_ndjson(path, seeds, count, rng):
    enc = encoder()
    size = 0
    with open(path, "wb", buffering=1 << 20) as f:
        for i in range(count):
            rec = seeds[i % len(seeds)]
            rec["Id"] = fresh_id(rng)
            b = (enc(rec) + "\n").encode("utf-8", "surrogatepass")
            f.write(b)
            size += len(b)
    return size


def write_array(path, seeds, target_bytes, rng):
    enc = encoder()
    size = 1
    n = 0
    with open(path, "wb", buffering=1 << 20) as f:
        f.write(b"[")
        while size < target_bytes:
            rec = seeds[n % len(seeds)]
            rec["Id"] = fresh_id(rng)
            b = enc(rec).encode("utf-8", "surrogatepass")
            if n:
                f.write(b",")
                size += 1
            f.write(b)
            size += len(b)
            n += 1
        f.write(b"]\n")
        size += 2
    return n, size


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "work"))
    ap.add_argument("--records", type=int, default=200000)
    ap.add_argument("--array-mb", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--with-seed", action="store_true",
                    help="always add bench/seed/*.ndjson")
    ap.add_argument("--no-shared", action="store_true",
                    help="ignore ../shared/corpus/det-eng-samples")
    ap.add_argument("--force", action="store_true",
                    help="regenerate even if the manifest matches")
    args = ap.parse_args()
    if args.records < 1 or args.array_mb < 1:
        ap.error("--records and --array-mb must be positive")

    repo_files = sorted(glob.glob(os.path.join(root, "tests", "data",
                                               "golden", "*.in.json")))
    for ext in ("json", "ndjson", "csv"):
        repo_files += sorted(glob.glob(os.path.join(root, "samples",
                                                    "*." + ext)))
    seed_files = sorted(glob.glob(os.path.join(here, "seed", "*.ndjson")))
    shared = os.environ.get("MF_SHARED",
                            os.path.join(os.path.dirname(root), "shared"))
    shared_dir = os.path.join(shared, "corpus", "det-eng-samples")
    shared_files = []
    if not args.no_shared and os.path.isdir(shared_dir):
        shared_files = sorted(glob.glob(os.path.join(shared_dir, "*.json")) +
                              glob.glob(os.path.join(shared_dir, "*.csv")))

    repo_recs, repo_pf = collect(repo_files)
    use_seed = args.with_seed or not repo_recs
    files = repo_files + (seed_files if use_seed else []) + shared_files
    seed_recs, seed_pf = collect(seed_files) if use_seed else ([], [])
    shared_recs, shared_pf = collect(shared_files)
    # one more dedup pass across groups
    seeds, seen = [], set()
    for rec in repo_recs + seed_recs + shared_recs:
        key = rec.get("Id") if isinstance(rec.get("Id"), str) else id(rec)
        if key in seen:
            continue
        seen.add(key)
        seeds.append(rec)
    if not seeds:
        log("no usable records found (repo, bench/seed, shared corpus)")
        return 1

    os.makedirs(args.out, exist_ok=True)
    nd_path = os.path.join(args.out, "corpus.ndjson")
    ar_path = os.path.join(args.out, "corpus-array.json")
    man_path = os.path.join(args.out, "manifest.json")
    want = {
        "gen_version": GEN_VERSION,
        "records": args.records,
        "array_mb": args.array_mb,
        "seed": args.seed,
        "sources_fingerprint": fingerprint(files),
        "unique_records": len(seeds),
    }
    if not args.force and os.path.exists(man_path):
        try:
            with open(man_path) as f:
                have = json.load(f)
            if (all(have.get(k) == v for k, v in want.items()) and
                    os.path.getsize(nd_path) == have["ndjson_bytes"] and
                    os.path.getsize(ar_path) == have["array_bytes"]):
                log("corpora up to date in %s (--force to rebuild)" % args.out)
                print(json.dumps(have))
                return 0
        except (OSError, ValueError, KeyError):
            pass

    def rel(p):
        return os.path.relpath(p, root)

    for group, pf in (("repo", repo_pf), ("bench/seed", seed_pf),
                      ("shared", shared_pf)):
        total = sum(n for _, n in pf)
        if pf:
            log("%-10s %3d files, %4d unique records" % (group, len(pf), total))
    log("%d unique realistic records; writing %d NDJSON records and a "
        "~%d MB array to %s" % (len(seeds), args.records, args.array_mb,
                                args.out))

    ops = {}
    for rec in seeds:
        ops[rec["Operation"]] = ops.get(rec["Operation"], 0) + 1
    rng = random.Random(args.seed)
    order = list(range(len(seeds)))
    rng.shuffle(order)
    seeds = [dict(seeds[i]) for i in order]

    nd_bytes = write_ndjson(nd_path, seeds, args.records, rng)
    ar_records, ar_bytes = write_array(ar_path, seeds,
                                       args.array_mb * 1000 * 1000, rng)
    man = dict(want)
    man.update({
        "ndjson": nd_path, "ndjson_records": args.records,
        "ndjson_bytes": nd_bytes,
        "array": ar_path, "array_records": ar_records,
        "array_bytes": ar_bytes,
        "operations": len(ops),
        "sources": [rel(p) for p in repo_files + (seed_files if use_seed
                                                  else [])] +
                   (["shared:" + shared_dir] if shared_files else []),
    })
    with open(man_path, "w") as f:
        json.dump(man, f, indent=1)
        f.write("\n")
    log("wrote %s (%d records, %.1f MB) and %s (%d records, %.1f MB)" %
        (nd_path, args.records, nd_bytes / 1e6, ar_path, ar_records,
         ar_bytes / 1e6))
    print(json.dumps(man))
    return 0


if __name__ == "__main__":
    sys.exit(main())
