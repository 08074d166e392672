#!/usr/bin/env python3
"""Write the demo's audit records: three tenants of ordinary activity with
attack traces mixed in.

    python3 demo/make_records.py --out DIR [--now 2026-11-28T21:00:00Z]

Writes, for each tenant of TENANTS and each content type,
DIR/<tenant>/<content type>.json (a JSON array sorted by CreationTime; the
emulator scenario demo/scenario.json serves these files), and
DIR/expected.json: the attack traces (tenant, Id, operation, the risk tags
each one must raise) and the password sprays, for demo/summarize.py and
tests/demo/test_demo.py.

Deterministic: the same --now gives byte-identical files (Ids are UUIDv5 of
the tenant and a sequence number). --now defaults to the current time
rounded down to the minute; record times are placed relative to it so that
everything falls inside the agent's first 24-hour window.

Ordinary activity is the benign part of samples/contoso-week.json (sign-ins,
file access, mail), read at build time and re-targeted to each tenant:
names, domains, IP ranges, Ids and times change, shapes stay. The attack
traces are written below as record builders (shapes from m365-api.md
§5/§6).
"""

import argparse
import datetime
import json
import os
import re
import sys
import textwrap
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
SAMPLE = os.path.join(SRC, "samples", "contoso-week.json")

NS = uuid.UUID("6d1f0c8e-5b7a-4e39-9a2c-3f4e5d6c7b8a")

CONTENT_TYPES = ["Audit.AzureActiveDirectory", "Audit.Exchange",
                 "Audit.SharePoint", "Audit.General", "DLP.All"]

# The sample's tenant, domain and attacker, replaced when re-targeting.
SAMPLE_ORG = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
SAMPLE_USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace",
                "heidi", "ivan", "judy", "ken", "lena"]

# name: label used in the agent config and the {tenant} topic placeholder.
TENANTS = [
    {"name": "contoso", "id": "6b2f3a10-1c4d-4e5f-8a9b-0c1d2e3f4a51",
     "domain": "contoso.com", "org": "contoso", "net": "198.51.100.",
     "users": SAMPLE_USERS},
    {"name": "fabrikam", "id": "7c3a4b21-2d5e-4f60-9b0c-1d2e3f4a5b62",
     "domain": "fabrikam.com", "org": "fabrikam", "net": "192.0.2.",
     "users": ["adele", "brian", "chloe", "diego", "emma", "felix", "gina",
               "hugo", "isla", "jonas", "kira", "liam"]},
    {"name": "northwind", "id": "8d4b5c32-3e6f-4071-8c1d-2e3f4a5b6c73",
     "domain": "northwindtraders.com", "org": "northwind",
     "net": "203.0.113.",
     "users": ["anna", "ben", "cara", "dan", "eva", "finn", "gus", "hana",
               "ines", "jack", "kurt", "lucy"]},
]

# Background records: ordinary operations of the sample, minus its attack
# chain (the attacker's address, rclone downloads).
ORDINARY_OPS = {"UserLoggedIn", "FileAccessed", "FileDownloaded",
                "FileUploaded", "FileModified", "Send", "MailItemsAccessed"}
SAMPLE_ATTACKER = "45.153.160.2"
# Background spread over [now - BG_FROM, now - BG_TO].
BG_FROM = datetime.timedelta(hours=23)
BG_TO = datetime.timedelta(minutes=20)

UA_CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
             "(KHTML, like Gecko) Chrome/124.0 Safari/537.36")
EXO_SERVER = "DM6PR11MB4012 (15.20.7452.025)"


def fmt_time(t):
    """CreationTime as the API writes it: no zone, no fraction."""
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def content_type(rec):
    wl = rec.get("Workload")
    if rec.get("RecordType") in (11, 13, 33, 63):
        return "DLP.All"
    return {"AzureActiveDirectory": "Audit.AzureActiveDirectory",
            "Exchange": "Audit.Exchange", "SharePoint": "Audit.SharePoint",
            "OneDrive": "Audit.SharePoint"}.get(wl, "Audit.General")


class Tenant:
    """Builds one tenant's records; ids are UUIDv5 of (tenant, sequence)."""

    def __init__(self, spec, now):
        self.spec = spec
        self.now = now
        self.id = spec["id"]
        self.dom = spec["domain"]
        self.org = spec["org"]
        self.records = []
        self.expected = []
        self.seq = 0

    def uid(self, what="rec"):
        self.seq += 1
        return str(uuid.uuid5(NS, "%s:%s:%d" % (self.spec["name"], what,
                                                 self.seq)))

    def upn(self, user):
        return "%s@%s" % (user, self.dom)

    def at(self, ago):
        return fmt_time(self.now - ago)

    def add(self, rec, expect=None, story=None):
        rec["Id"] = self.uid()
        self.records.append(rec)
        if expect:
            self.expected.append({"tenant": self.spec["name"],
                                  "id": rec["Id"],
                                  "operation": rec["Operation"],
                                  "user": rec.get("UserId"),
                                  "story": story, "tags": list(expect)})
        return rec

    # ---- record shapes (m365-api.md §5/§6)

    def base(self, ago, op, rtype, workload, user, ip, **kw):
        r = {"CreationTime": self.at(ago), "Id": None, "Operation": op,
             "OrganizationId": self.id, "RecordType": rtype,
             "UserKey": self.uid("key"), "UserType": 0, "Version": 1,
             "Workload": workload, "ClientIP": ip, "UserId": user}
        r.update(kw)
        return r

    def aad_signin(self, ago, user, ip, ok, ua, request_type,
                   app="89bee1f7-5e6e-4d8a-9f3d-ecd601259da7", **kw):
        key = self.uid("user")
        r = self.base(ago, "UserLoggedIn" if ok else "UserLoginFailed", 15,
                      "AzureActiveDirectory", user, ip,
                      ResultStatus="Success" if ok else "Failed",
                      UserKey=key,
                      ObjectId="00000003-0000-0ff1-ce00-000000000000",
                      AzureActiveDirectoryEventType=1,
                      ExtendedProperties=[
                          {"Name": "ResultStatusDetail",
                           "Value": "Success" if ok else "UserError"},
                          {"Name": "UserAgent", "Value": ua},
                          {"Name": "RequestType", "Value": request_type},
                          {"Name": "KeepMeSignedIn", "Value": "False"}],
                      ModifiedProperties=[],
                      Actor=[{"ID": key, "Type": 0}, {"ID": user, "Type": 5}],
                      ActorContextId=self.id, ActorIpAddress=ip,
                      InterSystemsId=self.uid("sys"),
                      IntraSystemId=self.uid("sys"), SupportTicketId="",
                      TargetContextId=self.id,
                      Target=[{"ID": "00000003-0000-0ff1-ce00-000000000000",
                               "Type": 0}],
                      ApplicationId=app,
                      ErrorNumber="0" if ok else "50126")
        if not ok:
            r["LogonError"] = "InvalidUserNameOrPassword"
        r.update(kw)
        return r

    def aad_admin(self, ago, op, actor, ip, obj, target, modified,
                  category="User"):
        return self.base(
            ago, op, 8, "AzureActiveDirectory", actor, ip,
            ResultStatus="Success",
            UserKey="10032001%08X@%s.onmicrosoft.com" % (
                self.seq * 7919 % 0xFFFFFFFF, self.org),
            ObjectId=obj, AzureActiveDirectoryEventType=1,
            ExtendedProperties=[{"Name": "additionalDetails", "Value": "{}"},
                                {"Name": "extendedAuditEventCategory",
                                 "Value": category}],
            ModifiedProperties=modified,
            Actor=[{"ID": actor, "Type": 5},
                   {"ID": "10032001A1B2C3D4", "Type": 3}],
            ActorContextId=self.id, InterSystemsId=self.uid("sys"),
            IntraSystemId=self.uid("sys"), SupportTicketId="",
            TargetContextId=self.id,
            Target=[{"ID": "User_" + self.uid("obj"), "Type": 2},
                    {"ID": target, "Type": 5}])

    def exo_cmdlet(self, ago, op, actor, ip, obj, params, user_type=2):
        return self.base(
            ago, op, 1, "Exchange", actor, ip, ResultStatus="True",
            UserKey="1003200172%06X" % (self.seq * 104729 % 0xFFFFFF),
            UserType=user_type, ObjectId=obj,
            AppId="fb78d390-0c51-40cd-8e17-fdbfab77341b", ClientAppId="",
            ExternalAccess=False,
            OrganizationName="%s.onmicrosoft.com" % self.org,
            OriginatingServer=EXO_SERVER,
            Parameters=[{"Name": k, "Value": v} for k, v in params],
            SessionId=self.uid("session"))

    def spo(self, ago, op, rtype, user, ip, site, folder, name, ua, **kw):
        url = "https://%s.sharepoint.com/sites/%s/" % (self.org, site)
        return self.base(
            ago, op, rtype, "SharePoint", user, ip,
            UserKey="i:0h.f|membership|10032001%08x@live.com" % (
                self.seq * 6007 % 0xFFFFFFFF),
            ObjectId=url + folder + "/" + name,
            CorrelationId=self.uid("corr"), EventSource="SharePoint",
            ItemType="File", ListId=self.uid("list"),
            ListItemUniqueId=self.uid("item"), Site=self.uid("site"),
            UserAgent=ua, WebId=self.uid("web"),
            SourceFileExtension=name.rsplit(".", 1)[-1], SiteUrl=url,
            SourceFileName=name, SourceRelativeUrl=folder, **kw)

    def dlp_exchange(self, ago, sender, to, subject, policy, rule, sit,
                     count, severity, actions):
        return self.base(
            ago, "DlpRuleMatch", 13, "Exchange", sender, None,
            UserKey="DlpAgent", UserType=4,
            ObjectId="<%s@%s>" % (self.uid("msg"), self.dom),
            IncidentId=self.uid("incident"),
            SensitiveInfoDetectionIsIncluded=False,
            ExchangeMetaData={"BCC": [], "CC": [], "From": sender,
                              "MessageID": "<%s@%s>" % (self.uid("msg"),
                                                         self.dom),
                              "RecipientCount": len(to),
                              "Sent": self.at(ago), "Subject": subject,
                              "To": to},
            PolicyDetails=[{
                "PolicyId": self.uid("policy"), "PolicyName": policy,
                "Rules": [{"Actions": actions,
                           "ConditionsMatched": {"SensitiveInformation": [{
                               "Confidence": 85, "Count": count,
                               "SensitiveType": self.uid("sit"),
                               "SensitiveInformationTypeName": sit,
                               "UniqueCount": count}]},
                           "RuleId": self.uid("rule"), "RuleMode": "Enable",
                           "RuleName": rule, "Severity": severity}]}])

    def alert(self, ago, name, about, op, severity):
        aid = self.uid("alert")
        return self.base(
            ago, "AlertTriggered", 40, "SecurityComplianceCenter",
            "SecurityComplianceAlerts", None, ResultStatus="Succeeded",
            UserKey="SecurityComplianceAlerts", UserType=4, ObjectId=aid,
            AlertId=aid, AlertLinks=[], AlertType="System",
            Category="ThreatManagement", Comments="New alert",
            Data=json.dumps({"f3u": about, "op": op, "tid": self.id,
                             "an": name, "sev": severity},
                            separators=(",", ":")),
            Name=name, PolicyId=self.uid("policy"), Severity=severity,
            Source="Office 365 Security & Compliance", Status="Active")

    def teams_member_added(self, ago, user, ip, team, member_upn, display):
        return self.base(
            ago, "MemberAdded", 25, "MicrosoftTeams", user, ip,
            TeamName=team, TeamGuid="19:%s@thread.tacv2"
            % self.uid("team").replace("-", ""),
            Members=[{"DisplayName": display, "Role": 3, "UPN": member_upn}],
            CommunicationType="Team")


# --------------------------------------------------------------------------
# Ordinary activity

def load_background():
    with open(SAMPLE, encoding="utf-8") as f:
        sample = json.load(f)
    out = []
    for r in sample:
        if r.get("Operation") not in ORDINARY_OPS:
            continue
        if SAMPLE_ATTACKER in json.dumps(r) or "rclone" in json.dumps(r):
            continue
        owner = r.get("MailboxOwnerUPN")
        if owner and owner != r.get("UserId"):
            continue        # the sample's intruder reading the CEO's mail
        out.append(r)
    out.sort(key=lambda r: r["CreationTime"])
    return out


def parse_ct(s):
    return datetime.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")


def retarget(t, rec, t0, t1):
    """One sample record as ordinary activity of tenant t."""
    spec = t.spec
    text = json.dumps(rec, ensure_ascii=False)
    text = text.replace(SAMPLE_ORG, t.id)
    for old, new in zip(SAMPLE_USERS, spec["users"]):
        text = re.sub(r"(?<![A-Za-z])%s(?![a-z])" % old, new, text)
        text = text.replace("CONTOSO-%s" % old.upper(),
                            "%s-%s" % (spec["org"].upper(), new.upper()))
    text = text.replace("contoso.onmicrosoft.com",
                        "%s.onmicrosoft.com" % spec["org"])
    text = text.replace("contoso.sharepoint.com",
                        "%s.sharepoint.com" % spec["org"])
    text = text.replace("contoso-my.sharepoint.com",
                        "%s-my.sharepoint.com" % spec["org"])
    text = text.replace("contoso.com", spec["domain"])
    text = re.sub(r"\b(?:198\.51\.100|203\.0\.113)\.(\d+)",
                  lambda m: spec["net"] + m.group(1), text)
    r = json.loads(text)
    # squeeze the sample's week into the last day, keeping the order
    frac = ((parse_ct(rec["CreationTime"]) - t0).total_seconds()
            / max((t1 - t0).total_seconds(), 1))
    when = t.now - BG_FROM + (BG_FROM - BG_TO) * frac
    r["CreationTime"] = fmt_time(when.replace(microsecond=0))
    return r


def add_background(t, background):
    t0 = parse_ct(background[0]["CreationTime"])
    t1 = parse_ct(background[-1]["CreationTime"])
    for rec in background:
        t.add(retarget(t, rec, t0, t1))


# --------------------------------------------------------------------------
# Attack traces. Each story adds records with the tags they must raise.

H = lambda h: datetime.timedelta(hours=h)            # noqa: E731
M = lambda m: datetime.timedelta(minutes=m)          # noqa: E731
S = lambda s: datetime.timedelta(seconds=s)          # noqa: E731


def story_contoso(t):
    """Password spray from one address, one account falls; the intruder
    makes itself Global Administrator, turns MFA off, consents an app,
    forwards the CEO's mail and turns the audit log off."""
    ip = "45.153.160.2"
    start = H(5)
    spray_users = t.spec["users"][:3] + t.spec["users"][4:] + [
        "mike", "nina", "oscar", "peggy", "quinn"]
    for i, u in enumerate(spray_users):
        t.add(t.aad_signin(start - S(11 * i), t.upn(u), ip, False,
                           "python-requests/2.31.0", "OrgIdWsTrust2:process",
                           app="a0c73c16-a7e3-4564-9a95-2bdf47383716"),
              ["identity.login_failed"], "password spray")
    victim = t.upn("dave")
    t.add(t.aad_signin(start - S(11 * len(spray_users) + 20), victim, ip,
                       True, "python-requests/2.31.0",
                       "OrgIdWsTrust2:process",
                       app="a0c73c16-a7e3-4564-9a95-2bdf47383716"),
          ["identity.legacy_or_ropc_auth"], "password spray: success")
    t.add(t.aad_admin(H(4) + M(40), "Add member to role.", victim, ip,
                      victim, victim, [
                          {"Name": "Role.ObjectID",
                           "NewValue": "62e90394-69f5-4237-9190-012177145e10",
                           "OldValue": ""},
                          {"Name": "Role.DisplayName",
                           "NewValue": "Global Administrator",
                           "OldValue": ""},
                          {"Name": "Role.TemplateId",
                           "NewValue": "62e90394-69f5-4237-9190-012177145e10",
                           "OldValue": ""}]),
          ["identity.privileged_role_assigned"], "Global Administrator")
    t.add(t.aad_admin(H(4) + M(35), "Disable Strong Authentication.", victim,
                      ip, t.upn("ceo"), t.upn("ceo"), []),
          ["identity.mfa_disabled"], "MFA disabled")
    t.add(t.aad_admin(H(4) + M(20), "Consent to application.", victim, ip,
                      "Mail Sync Pro", "Mail Sync Pro", [
                          {"Name": "ConsentContext.IsAdminConsent",
                           "NewValue": "True", "OldValue": ""},
                          {"Name": "ConsentContext.OnBehalfOfAll",
                           "NewValue": "True", "OldValue": ""},
                          {"Name": "ConsentAction.Permissions",
                           "NewValue": "[] => [[ConsentType: AllPrincipals, "
                           "Scope:  Mail.Read Mail.Send Files.ReadWrite.All "
                           "offline_access User.Read]]; ",
                           "OldValue": ""}],
                      category="ApplicationManagement"),
          ["identity.app_consent_granted"], "app consent")
    t.add(t.exo_cmdlet(H(4) + M(5), "New-InboxRule", victim,
                       "::ffff:" + ip, t.upn("ceo") + "\\.", [
                           ("Mailbox", "ceo"), ("Name", "."),
                           ("SubjectOrBodyContainsWords",
                            "invoice;payment;wire"),
                           ("ForwardTo", "acct-drop@mail-relay.example"),
                           ("MarkAsRead", "True"),
                           ("MoveToFolder", "RSS Subscriptions"),
                           ("StopProcessingRules", "True")], user_type=0),
          ["behavior.inbox_rule_forwarding", "behavior.inbox_rule_hiding"],
          "inbox rule: forward outside, hide replies")
    t.add(t.alert(H(4) - M(2), "Suspicious email forwarding activity",
                  victim, "New-InboxRule", "High"),
          ["monitor.security_alert"], "alert")
    t.add(t.exo_cmdlet(H(3) + M(50), "Set-AdminAuditLogConfig", victim,
                       ip + ":28491", "Admin Audit Log Settings",
                       [("UnifiedAuditLogIngestionEnabled", "False")]),
          ["monitor.ual_disabled"], "audit logging turned off")
    # an ordinary policy tip the same day
    t.add(t.dlp_exchange(H(11), t.upn("erin"), [t.upn("frank")],
                         "new hire forms", "U.S. Personally Identifiable "
                         "Information (PII) Data", "Low volume of PII",
                         "U.S. Social Security Number (SSN)", 2, "Low",
                         ["NotifyUser"]),
          ["data.dlp_match"], "DLP policy tip")


def story_fabrikam(t):
    """Device-code phishing of a helpdesk admin, full access to the CFO's
    mailbox, customer data mailed out (DLP) and shared with an anyone
    link."""
    ip = "185.220.101.47"
    admin = t.upn("helpdesk.lee")
    t.add(t.aad_signin(H(9), admin, ip, True, UA_CHROME, "Cmsi:Cmsi",
                       app="29d9ed98-a469-4536-ade2-f981bc1d605e"),
          ["identity.device_code_login"], "device-code sign-in")
    t.add(t.exo_cmdlet(H(8) + M(45), "Add-MailboxPermission", admin,
                       ip + ":50412", "cfo", [
                           ("Identity", "cfo"), ("User", admin),
                           ("AccessRights", "FullAccess"),
                           ("InheritanceType", "All"),
                           ("AutoMapping", "False")]),
          ["identity.mailbox_full_access_granted"], "mailbox FullAccess")
    t.add(t.base(H(8) + M(30), "MailItemsAccessed", 50, "Exchange", admin,
                 "[2001:db8:77::9]:51234", ResultStatus="Succeeded",
                 ClientIPAddress="2001:db8:77::9",
                 ClientInfoString="Client=OWA;Action=ViaProxy",
                 ExternalAccess=False, InternalLogonType=0, LogonType=1,
                 MailboxGuid=t.uid("mbx"), MailboxOwnerUPN=t.upn("cfo"),
                 OrganizationName="%s.onmicrosoft.com" % t.org,
                 OriginatingServer=EXO_SERVER,
                 OperationProperties=[{"Name": "MailAccessType",
                                       "Value": "Bind"},
                                      {"Name": "IsThrottled",
                                       "Value": "False"}],
                 OperationCount=57),
          ["behavior.mailbox_accessed_by_other"], "CFO's mail read")
    t.add(t.dlp_exchange(H(8) + M(10), admin, ["lee.backup@mail-drop.example"],
                         "customer list", "U.S. Financial Data",
                         "High volume of credit card numbers",
                         "Credit Card Number", 240, "High",
                         ["NotifyUser", "GenerateIncidentReport"]),
          ["data.dlp_match"], "DLP match")
    t.add(t.spo(H(8), "AnonymousLinkCreated", 14, admin, ip, "Finance",
                "Shared Documents/Customers", "customers-2026.xlsx",
                UA_CHROME, EventData="<Type>View</Type>",
                UniqueSharingId=t.uid("share")),
          ["collab.anonymous_link_created"], "anonymous link")
    t.add(t.spo(H(7) + M(40), "AnonymousLinkUsed", 14, "anonymous",
                "185.220.101.52", "Finance", "Shared Documents/Customers",
                "customers-2026.xlsx", "curl/8.5.0", UserType=0),
          ["collab.anonymous_link_used"], "anonymous link used")
    t.add(t.teams_member_added(H(16), t.upn("adele"), t.spec["net"] + "23",
                               "Sales EMEA", t.upn("felix"), "Felix"))


def story_northwind(t):
    """A guest brought in and given the project files; an employee
    forwards mail to a private address and deletes the copies; two
    mistyped passwords (not a spray)."""
    adm = t.upn("it.admin")
    guest = "jo.vendor_partner-mail.example#EXT#@%s.onmicrosoft.com" % t.org
    t.add(t.aad_admin(H(14), "Add user.", adm, t.spec["net"] + "40", guest,
                      guest, [
                          {"Name": "AccountEnabled",
                           "NewValue": "[\r\n  true\r\n]", "OldValue": "[]"},
                          {"Name": "UserPrincipalName",
                           "NewValue": "[\r\n  \"%s\"\r\n]" % guest,
                           "OldValue": "[]"},
                          {"Name": "UserType",
                           "NewValue": "[\r\n  \"Guest\"\r\n]",
                           "OldValue": "[]"},
                          {"Name": "Included Updated Properties",
                           "NewValue": "AccountEnabled, UserPrincipalName, "
                           "UserType", "OldValue": ""}]),
          ["collab.guest_user_added"], "guest added")
    t.add(t.aad_admin(H(14) - M(1), "Invite external user.", adm,
                      t.spec["net"] + "40", guest, guest, [
                          {"Name": "InvitedUserEmailAddress",
                           "NewValue": "jo.vendor@partner-mail.example",
                           "OldValue": ""}]),
          ["collab.guest_user_added"], "guest invited")
    t.add(t.teams_member_added(H(13) + M(50), adm, t.spec["net"] + "40",
                               "Project Atlas", guest, "Jo (Partner)"))
    t.add(t.spo(H(13) + M(30), "AddedToSecureLink", 14, t.upn("anna"),
                t.spec["net"] + "23", "Projects", "Shared Documents",
                "Roadmap 2027.pptx", "Microsoft Office PowerPoint/16.0",
                EventData="<PermissionsGranted>Read</PermissionsGranted>",
                TargetUserOrGroupName="jo.vendor@partner-mail.example",
                TargetUserOrGroupType="Guest",
                UniqueSharingId=t.uid("share")),
          ["collab.external_share"], "shared with the guest")
    user = t.upn("kurt")
    for i in range(2):
        t.add(t.aad_signin(H(6) - M(i), user, t.spec["net"] + "57", False,
                           UA_CHROME, "Login:login"),
              ["identity.login_failed"], "mistyped password")
    t.add(t.exo_cmdlet(H(2) + M(30), "New-InboxRule", user,
                       t.spec["net"] + "57:61022", user + "\\Archive", [
                           ("Name", "Archive"),
                           ("From", "payroll@%s" % t.dom),
                           ("ForwardTo", "kurt.private@mail-home.example"),
                           ("DeleteMessage", "True")], user_type=0),
          ["behavior.inbox_rule_forwarding", "behavior.inbox_rule_hiding"],
          "inbox rule: forward outside, delete")
    t.add(t.dlp_exchange(H(2) + M(10), user, ["kurt.private@mail-home.example"],
                         "FW: payroll March", "U.K. Financial Data",
                         "Bank account numbers", "U.K. Bank Account Number", 9,
                         "Medium", ["NotifyUser", "GenerateIncidentReport"]),
          ["data.dlp_match"], "DLP match on the forwarded mail")


STORIES = {"contoso": story_contoso, "fabrikam": story_fabrikam,
           "northwind": story_northwind}

# One password spray per tenant at most: failures from one address against
# many accounts, then a success from it (demo/summarize.py finds them again
# from the events; the test compares).
SPRAYS = [{"tenant": "contoso", "ip": "45.153.160.2",
           "success_user": "dave@contoso.com"}]


def build(now):
    background = load_background()
    tenants = []
    for spec in TENANTS:
        t = Tenant(spec, now)
        add_background(t, background)
        STORIES[spec["name"]](t)
        t.records.sort(key=lambda r: (r["CreationTime"], r["Id"]))
        tenants.append(t)
    return tenants


def write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=None,
                  separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, path)


def parse_now(s):
    if s is None:
        n = datetime.datetime.now(datetime.timezone.utc)
        return n.replace(tzinfo=None, second=0, microsecond=0)
    s = s.rstrip("Z")
    return datetime.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="directory to write")
    ap.add_argument("--now", help="reference time (UTC, ISO 8601); "
                    "default: now, rounded down to the minute")
    args = ap.parse_args(argv)
    now = parse_now(args.now)
    tenants = build(now)
    expected = {"now": fmt_time(now) + "Z", "tenants": [], "traces": [],
                "sprays": SPRAYS, "records": 0}
    for t in tenants:
        d = os.path.join(args.out, t.spec["name"])
        os.makedirs(d, exist_ok=True)
        per_ct = {ct: [] for ct in CONTENT_TYPES}
        for r in t.records:
            per_ct[content_type(r)].append(r)
        for ct, recs in per_ct.items():
            if not recs:
                raise SystemExit("make_records: %s has no %s record; the "
                                 "scenario serves every content type"
                                 % (t.spec["name"], ct))
            write_json(os.path.join(d, ct + ".json"), recs)
        expected["tenants"].append({
            "name": t.spec["name"], "id": t.id,
            "records": {ct: len(v) for ct, v in per_ct.items()}})
        expected["traces"] += t.expected
        expected["records"] += len(t.records)
    write_json(os.path.join(args.out, "expected.json"), expected)
    print("make_records: %d records for %d tenants (%d attack traces) in %s"
          % (expected["records"], len(tenants), len(expected["traces"]),
             args.out))
    for t in tenants:
        story = " ".join(STORIES[t.spec["name"]].__doc__.split())
        print(textwrap.fill(
            "%-9s %d records: a day of ordinary activity; %s"
            % (t.spec["name"], len(t.records),
               story[0].lower() + story[1:]),
            width=78, initial_indent="  ", subsequent_indent=" " * 12))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
