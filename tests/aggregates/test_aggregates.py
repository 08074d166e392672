#!/usr/bin/env python3
"""Aggregate rules through `m365fwd normalize`, the way a user runs them.

Usage: test_aggregates.py M365FWD_BINARY   (env MF_SOURCE_ROOT, MF_TEST_MMDB,
optional MF_SHARED for the schemas)

- every rule of normalizers/aggregates.yaml has a case here: records that
  take one window to the rule's threshold (the rule fires exactly once, the
  line right after the record that fired it) and a near miss one short of
  it (the rule stays quiet);
- every finding line validates: OCSF against OCSF 1.8.0 (Detection Finding
  2004), ECS against ECS 9.4.0; the raw form carries the same uid;
- --no-aggregates writes no finding; --aggregate-state carries a window
  across two runs (fires once, with the uid of a single run);
- a bad --aggregates-file stops with FILE:LINE; --geoip-db fills
  src_endpoint.location / source.geo and turns on the distant-address rule.
Exit 0 all passed, 1 a failure.
"""
import json
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get('MF_SOURCE_ROOT') or os.path.normpath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, os.path.join(SRC, 'tests', 'schema'))
import ecs_validate  # noqa: E402
import ocsf_validate  # noqa: E402

TENANT = '5b7c1c2e-0000-4000-8000-0000000000aa'
_seq = [0]


def rec(op, t, user='alice@contoso.com', ip='203.0.113.5', rt=15,
        workload='AzureActiveDirectory', status='Success', **extra):
    """One audit record at 2026-03-02T<t>."""
    _seq[0] += 1
    r = {'CreationTime': '2026-03-02T' + t,
         'Id': '00000000-0000-4000-8000-%012d' % _seq[0],
         'Operation': op, 'OrganizationId': TENANT, 'RecordType': rt,
         'ResultStatus': status, 'UserType': 0, 'Workload': workload,
         'UserId': user}
    if ip:
        r['ClientIP'] = ip
    r.update(extra)
    return r


def t_at(sec):
    """10:00:00 + sec."""
    s = 36000 + sec
    return '%02d:%02d:%02d' % (s // 3600, (s // 60) % 60, s % 60)


def failed(i, user, ip, err='50126', logon_error='InvalidUserNameOrPassword'):
    return rec('UserLoginFailed', t_at(i), user=user, ip=ip, status='Failed',
               ErrorNumber=err, LogonError=logon_error)


def login(i, user, ip, **extra):
    return rec('UserLoggedIn', t_at(i), user=user, ip=ip, ErrorNumber='0', **extra)


def exo(op, i, user='alice@contoso.com', rt=2, **extra):
    return rec(op, t_at(i), user=user, ip='203.0.113.5', rt=rt, workload='Exchange',
               status='Succeeded', **extra)


def spo(op, i, obj, user='alice@contoso.com', site='https://contoso.sharepoint.com/sites/fin/'):
    return rec(op, t_at(i), user=user, rt=6, workload='SharePoint', ObjectId=obj,
               SiteUrl=site, SourceFileName=obj.rsplit('/', 1)[-1])


# ---- one case per rule: (records that fire, near miss) -------------------

def c_spray(n):
    return [failed(i, 'u%d@contoso.com' % i, '198.51.100.20') for i in range(n)]


def c_distributed(n):
    out = [failed(i, 'u%d@contoso.com' % i, '198.51.100.%d' % (30 + i)) for i in range(n)]
    for r in out:
        r['ExtendedProperties'] = [{'Name': 'UserAgent', 'Value': 'python-requests/2.31.0'}]
    # the same failures with other clients count elsewhere
    out.append(failed(n, 'x@contoso.com', '198.51.100.200'))
    return out


def c_success(same_ip):
    return c_spray(5) + [login(30, 'u2@contoso.com', '198.51.100.20' if same_ip
                               else '192.0.2.99')]


def c_brute(n):
    return [failed(i * 20, 'victim@contoso.com', '192.0.2.40') for i in range(n)]


def c_lockout(err):
    return [failed(0, 'victim@contoso.com', '192.0.2.41', err=err)]


def c_mfa(n):
    return [failed(i * 30, 'bob@contoso.com', '192.0.2.42', err='500121',
                   logon_error='') for i in range(n)]


def c_os(n):
    oses = ['Windows 10', 'Linux', 'MacOs', 'Android', 'iOS']
    return [login(i, 'lidia@contoso.com', '192.0.2.43',
                  DeviceProperties=[{'Name': 'OS', 'Value': oses[i]}])
            for i in range(n)]


def c_apps(n_ua):
    apps = ['00000002-0000-0ff1-ce00-000000000000', '1b730954-1685-4b74-9bfd-dac224a7b894',
            '1950a258-227b-4e31-a9cf-717495945fc2']
    return [login(i, 'lidia@contoso.com', '192.0.2.44', ApplicationId=apps[i % 3],
                  ExtendedProperties=[{'Name': 'UserAgent', 'Value': 'agent/%d' % i}])
            for i in range(n_ua)]


def c_sso(n):
    return [failed(i * 10, 'carol@contoso.com', '192.0.2.45', err='16000',
                   logon_error='SsoArtifactInvalidOrExpired') for i in range(n)]


def c_distant(far):
    return [login(0, 'ann@contoso.com', '192.0.2.9'),
            login(600, 'ann@contoso.com', '198.51.100.9' if far else '192.0.2.200')]


def c_deletes(n):
    return [rec('Delete user.', t_at(i * 5), user='admin@contoso.com', rt=8, ip=None,
                ObjectId='u%d@contoso.com' % i) for i in range(n)]


def c_download(n, op='FileDownloaded', user='alice@contoso.com'):
    return [spo(op, i, 'https://contoso.sharepoint.com/sites/fin/Shared/f%d.xlsx' % i, user=user)
            for i in range(n)]


def c_file_delete(n):
    return [spo('FileDeleted', i, 'https://contoso.sharepoint.com/sites/fin/Shared/d%d.docx' % i)
            for i in range(n)]


def c_throttled(v):
    return [exo('MailItemsAccessed', 0, rt=50, MailboxOwnerUPN='alice@contoso.com',
                OperationProperties=[{'Name': 'MailAccessType', 'Value': 'Bind'},
                                     {'Name': 'IsThrottled', 'Value': v}])]


def c_items(total):
    out, k = [], 0
    for i in range(20):
        n = min(25, total - k)
        items = [{'Id': 'RgAAA%05d' % (k + j)} for j in range(n)]
        k += n
        out.append(exo('MailItemsAccessed', i * 60, rt=50, MailboxOwnerUPN='boss@contoso.com',
                       Folders=[{'Path': '\\Inbox', 'FolderItems': items}]))
    return out


def c_app_mailboxes(n):
    return [exo('MailItemsAccessed', i, rt=50, user='svc@contoso.com',
                AppId='00000003-0000-0000-c000-000000000000',
                ClientAppId='d3590ed6-52b3-4102-aeff-aad2292ab01c',
                MailboxOwnerUPN='mb%d@contoso.com' % i) for i in range(n)]


def c_queries(n):
    return [exo('SearchQueryInitiatedExchange', i * 10, QueryText='meeting notes %d' % i)
            for i in range(n)]


def c_sensitive(n):
    words = ['password reset', 'wire transfer', 'payroll']
    return [exo('SearchQueryInitiatedExchange', i * 10, QueryText=words[i]) for i in range(n)] + \
        [exo('SearchQueryInitiatedExchange', 100, QueryText='lunch menu')]


def c_attachments(n_docs):
    out = []
    for i in range(0, n_docs, 5):
        docs = ['report%d.pdf (%db)' % (i + j, 1000 + j) for j in range(min(5, n_docs - i))]
        out.append(exo('Send', i * 10, Item={'Subject': 'q%d' % i,
                                             'Attachments': '; '.join(docs + ['image00%d.png (20b)' % i])}))
    return out


def c_purge(n):
    items = [{'Id': 'RgHD%04d' % i, 'Subject': 's%d' % i} for i in range(n)]
    return [exo('HardDelete', k * 60, MailboxOwnerUPN='alice@contoso.com',
                Folder={'Path': '\\Sent Items'}, AffectedItems=items[k::2]) for k in range(2)]


def c_notice(subject):
    return [exo('SoftDelete', 0, MailboxOwnerUPN='alice@contoso.com',
                Folder={'Path': '\\Inbox'}, AffectedItems=[{'Id': 'RgN1', 'Subject': subject}])]


def c_forward(same):
    out = []
    for i in range(2):
        dest = 'drop@evil.example' if same or i == 0 else 'other@evil.example'
        out.append(rec('Set-Mailbox', t_at(i * 600), user='admin@contoso.com', rt=1,
                       workload='Exchange', status='True', ObjectId='mb%d' % i,
                       Parameters=[{'Name': 'Identity', 'Value': 'mb%d' % i},
                                   {'Name': 'ForwardingSmtpAddress', 'Value': dest}]))
    return out


def c_sp(n):
    return [rec('Add service principal.', t_at(i * 30), user='dev@contoso.com', rt=8, ip=None,
                ObjectId='sp-%d' % i) for i in range(n)]


CASES = {
    'identity.password_spray/one_source': (c_spray(5), c_spray(4)),
    'identity.password_spray/distributed': (c_distributed(30), c_distributed(29)),
    'identity.password_spray/success_after_spray': (c_success(True), c_success(False)),
    'identity.brute_force_user/failures': (c_brute(10), c_brute(9)),
    'identity.brute_force_user/lockout': (c_lockout('50053'), c_lockout('50055')),
    'identity.mfa_fatigue/denied_prompts': (c_mfa(5), c_mfa(4)),
    'identity.auth_enumeration/os_sweep': (c_os(4), c_os(3)),
    'identity.auth_enumeration/app_sweep': (c_apps(6), c_apps(5)),
    'identity.sso_errors/sso_failures': (c_sso(5), c_sso(4)),
    'identity.concurrent_sessions_multi_ip/distant_addresses': (c_distant(True), c_distant(False)),
    'identity.account_deleted_bulk/deletions': (c_deletes(5), c_deletes(4)),
    'data.mass_download/downloads': (c_download(51), c_download(50)),
    'data.mass_download/access_burst': (c_download(200, 'FileAccessed'),
                                        c_download(199, 'FileAccessed')),
    'data.mass_deletion/deletions': (c_file_delete(50), c_file_delete(49)),
    'behavior.mail_access_burst/throttled': (c_throttled('True'), c_throttled('False')),
    'behavior.mail_access_burst/items': (c_items(500), c_items(499)),
    'behavior.mail_access_burst/app_many_mailboxes': (c_app_mailboxes(6), c_app_mailboxes(5)),
    'behavior.mailbox_search_recon/many_queries': (c_queries(21), c_queries(20)),
    'behavior.mailbox_search_recon/sensitive_terms': (c_sensitive(2), c_sensitive(1)),
    'behavior.mass_send_attachments_external/attachments': (c_attachments(26),
                                                            c_attachments(25)),
    'behavior.evidence_purge/hard_deletes': (c_purge(51), c_purge(50)),
    'behavior.evidence_purge/notices_deleted': (c_notice('Your verification code is 123456'),
                                                c_notice('Lunch on Friday')),
    'behavior.mailbox_smtp_forwarding/shared_destination': (c_forward(True), c_forward(False)),
    'identity.service_principal_added/burst': (c_sp(4), c_sp(3)),
}
# expected severity of the finding where it is not the tag's
SEVERITY = {
    'identity.password_spray/success_after_spray': 5,
    'behavior.mail_access_burst/app_many_mailboxes': 4,
    'behavior.mailbox_search_recon/sensitive_terms': 3,
    'behavior.evidence_purge/notices_deleted': 4,
    'behavior.mailbox_smtp_forwarding/shared_destination': 5,
}
GEO_RULES = {'identity.concurrent_sessions_multi_ip/distant_addresses'}


class Run:
    def __init__(self, exe, tmp):
        self.exe, self.tmp, self.failures = exe, tmp, []

    def fail(self, msg):
        self.failures.append(msg)
        print('not ok  ' + msg)

    def normalize(self, records, *args, schema='raw', name='in.ndjson'):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as f:
            for r in records:
                f.write(json.dumps(r) + '\n')
        p = subprocess.run([self.exe, 'normalize', '--schema', schema] + list(args) + [path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        lines = [json.loads(ln) for ln in p.stdout.decode().splitlines() if ln]
        return p, lines


def findings_raw(lines):
    """(position, finding) of the raw finding lines."""
    return [(i, ln['m365fwd']['finding']) for i, ln in enumerate(lines)
            if 'finding' in ln.get('m365fwd', {})]


def table_rules():
    with open(os.path.join(SRC, 'normalizers', 'aggregates.yaml')) as f:
        t = yaml.safe_load(f)
    return ['%s/%s' % (tag['id'], r['name']) for tag in t['tags'] for r in tag['rules']]


def check_cases(run, mmdb):
    rules = table_rules()
    for rule in rules:
        if rule not in CASES:
            run.fail('%s: no case in test_aggregates.py' % rule)
    tags = {}
    with open(os.path.join(SRC, 'normalizers', 'aggregates.yaml')) as f:
        for tag in yaml.safe_load(f)['tags']:
            tags[tag['id']] = tag.get('severity')
    for rule, (pos, miss) in sorted(CASES.items()):
        geo = ['--geoip-db', mmdb] if rule in GEO_RULES and mmdb else []
        if rule in GEO_RULES and not mmdb:
            print('skip    %s (no test MaxMind DB / built without libmaxminddb)' % rule)
            continue
        p, lines = run.normalize(pos, *geo)
        got = findings_raw(lines)
        mine = [(i, f) for i, f in got if f['rule'] == rule]
        if p.returncode != 0 or len(mine) != 1:
            run.fail('%s: %d findings of the rule (exit %d, all: %s) %s' % (
                rule, len(mine), p.returncode, [f['rule'] for _, f in got],
                p.stderr.decode()[-300:]))
            continue
        pos_i, f = mine[0]
        # the line before the finding is the record that fired it
        fired_by = lines[pos_i - 1].get('Id')
        want_sev = SEVERITY.get(rule, tags.get(rule.split('/')[0]))
        problems = []
        if want_sev and f['severity'] != want_sev:
            problems.append('severity %s, want %s' % (f['severity'], want_sev))
        if f['tag'] != rule.split('/')[0]:
            problems.append('tag %s' % f['tag'])
        if fired_by not in f['related_events'] and rule.split('/')[1] != 'success_after_spray':
            problems.append('the record before the finding (%s) is not among its events'
                            % fired_by)
        if f['related_events_count'] != f['count'] or f['count'] < 1:
            problems.append('count %s / related_events_count %s' % (
                f['count'], f['related_events_count']))
        if problems:
            run.fail('%s: %s' % (rule, '; '.join(problems)))
        else:
            print('ok      %-58s fires once (count %d, severity %d)' % (
                rule, f['count'], f['severity']))
        p, lines = run.normalize(miss, *geo)
        got = [f for _, f in findings_raw(lines) if f['rule'] == rule]
        if got:
            run.fail('%s: the near miss fired: %s' % (rule, got[0]['key']))
        else:
            print('ok      %-58s near miss stays quiet' % rule)


def check_schemas(run, mmdb):
    """Every case's findings in OCSF and ECS against the schemas."""
    ocsf_dir = ocsf_validate.schema_dir_default() or os.path.join(
        SRC, '..', 'shared', 'schemas', 'ocsf-1.8.0')
    ecs_path = ecs_validate.schema_path()
    if not os.path.isdir(ocsf_dir) or not ecs_path:
        print('skip    schema validation of findings (../shared/schemas missing)')
        return
    ocsf = ocsf_validate.Validator(ocsf_validate.Schema(ocsf_dir))
    ecs = ecs_validate.EcsSchema(ecs_path)
    all_records = []
    for rule, (pos, _miss) in sorted(CASES.items()):
        if rule not in GEO_RULES or mmdb:
            all_records.append(pos)
    geo = ['--geoip-db', mmdb] if mmdb else []
    n_total = 0
    for schema in ('ocsf', 'ecs'):
        n = 0
        for k, records in enumerate(all_records):
            p, lines = run.normalize(records, *geo, schema=schema, name='s%d.ndjson' % k)
            if schema == 'ocsf':
                fl = [ln for ln in lines if ln.get('class_uid') == 2004 and
                      ln['metadata']['product']['name'] == 'm365fwd']
                problems = []
                for i, ln in enumerate(fl, 1):
                    problems += ['%d: %s: %s' % (i, path, msg)
                                 for path, msg in ocsf.validate(ln)]
            else:
                fl = [ln for ln in lines if ln.get('event', {}).get('kind') == 'alert']
                text = [json.dumps(ln) for ln in fl]
                problems = ecs_validate.validate_lines(ecs, text, 'case%d' % k)
            n += len(fl)
            for pr in problems:
                run.fail('%s finding of case %d invalid: %s' % (schema, k, pr))
        n_total += n
        print('ok      %d %s findings checked against the schema' % (n, schema))
    if n_total < 2 * len(all_records):
        run.fail('fewer findings than cases in the schema check (%d)' % n_total)


def check_cli(run, mmdb):
    records = c_spray(5)
    p, lines = run.normalize(records, '--no-aggregates')
    if findings_raw(lines) or len(lines) != 5:
        run.fail('--no-aggregates still wrote findings')
    else:
        print('ok      --no-aggregates writes the records only')
    # one run over the whole spray: the reference
    _, lines = run.normalize(records)
    ref = [f for _, f in findings_raw(lines)]
    # split over two runs with --aggregate-state
    state = os.path.join(run.tmp, 'agg.state')
    p1, l1 = run.normalize(records[:3], '--aggregate-state', state, name='a.ndjson')
    p2, l2 = run.normalize(records[3:], '--aggregate-state', state, name='b.ndjson')
    got = [f for _, f in findings_raw(l1)] + [f for _, f in findings_raw(l2)]
    if p1.returncode or p2.returncode or len(got) != 1 or len(ref) != 1 or \
            got[0]['uid'] != ref[0]['uid'] or got[0]['count'] != 5:
        run.fail('--aggregate-state: %d findings over two runs (%s vs %s)' % (
            len(got), [g['uid'] for g in got], [r['uid'] for r in ref]))
    else:
        print('ok      --aggregate-state: a spray split over two runs fires once, same uid')
    # the same uid in every schema
    uids = set()
    for schema in ('ocsf', 'ecs', 'raw'):
        _, lines = run.normalize(records, schema=schema)
        for ln in lines:
            if ln.get('class_uid') == 2004 and ln['metadata']['product']['name'] == 'm365fwd':
                uids.add(ln['finding_info']['uid'])
            elif ln.get('event', {}).get('kind') == 'alert':
                uids.add(ln['event']['id'])
            elif 'finding' in ln.get('m365fwd', {}):
                uids.add(ln['m365fwd']['finding']['uid'])
    if len(uids) != 1:
        run.fail('finding uids differ between schemas: %s' % uids)
    else:
        print('ok      one finding uid in ocsf, ecs and raw')
    # a bad table stops the command with its location
    bad = os.path.join(run.tmp, 'bad.yaml')
    with open(bad, 'w') as f:
        f.write('version: 1\ntags:\n  - id: identity.x\n    title: x\n'
                '    area: identity_access\n    severity: 9\n    rules: []\n')
    p, _ = run.normalize(records, '--aggregates-file', bad)
    err = p.stderr.decode()
    if p.returncode != 2 or 'bad.yaml:6:' not in err:
        run.fail('bad --aggregates-file: exit %d, %s' % (p.returncode, err.strip()))
    else:
        print('ok      a bad --aggregates-file stops with FILE:LINE')
    # summary tells when the geo rule is off
    p, _ = run.normalize(records, '--summary')
    if 'rules off without --geoip-db' not in p.stderr.decode():
        run.fail('--summary does not say the distant-address rule is off')
    else:
        print('ok      --summary says a rule is off without --geoip-db')
    if not mmdb:
        return
    _, lines = run.normalize([login(0, 'ann@contoso.com', '192.0.2.9')], '--geoip-db', mmdb,
                             schema='ocsf')
    loc = lines[0].get('src_endpoint', {}).get('location', {})
    _, elines = run.normalize([login(0, 'ann@contoso.com', '192.0.2.9')], '--geoip-db', mmdb,
                              schema='ecs')
    geo = elines[0].get('source', {}).get('geo', {})
    if loc.get('city') != 'Paris' or loc.get('country') != 'FR' or \
            geo.get('city_name') != 'Paris' or 'location' not in geo:
        run.fail('--geoip-db: location %s / geo %s' % (loc, geo))
    else:
        print('ok      --geoip-db fills src_endpoint.location and source.geo')


def main(argv):
    exe = argv[1]
    mmdb = os.environ.get('MF_TEST_MMDB')
    if mmdb and not os.path.exists(mmdb):
        mmdb = None
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(exe, tmp)
        if mmdb:
            p, _ = run.normalize([], '--geoip-db', mmdb)
            if 'without libmaxminddb' in p.stderr.decode():
                mmdb = None
        check_cases(run, mmdb)
        check_schemas(run, mmdb)
        check_cli(run, mmdb)
    if run.failures:
        print('%d failures' % len(run.failures))
        return 1
    print('all passed')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
