#!/usr/bin/env python3
"""Write the bundled sample of audit records (deterministic).

  samples/contoso-week.json    a content blob: one JSON array, a record a line
  samples/purview-export.csv   a Purview audit-search CSV export (AuditData)

A week at Contoso (tenant 0b1c2d3e-..., synthetic values only): ordinary
sign-ins, file and mail activity, with one intrusion mixed in on Wednesday:
a password spray from one IP that ends in a success for dave, a device-code
login, Global Administrator for dave, MFA disabled, consent to a mail-reading
app, FullAccess on the CEO's mailbox, an inbox rule that forwards outside and
hides the replies, an anonymous link, a guest added, DLP matches and unified
audit logging switched off. The CSV is an investigator's export for dave the
following Monday (forwarding via Set-Mailbox, POP/IMAP enabled, downloads).

Every record here must normalize cleanly: scripts/demo.sh runs with -e.
Re-run after editing: python3 tools/make_samples.py
"""
import csv
import datetime as dt
import io
import json
import os
import random
import uuid

TENANT = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
ORG = "contoso.onmicrosoft.com"
ATTACKER_IP = "45.153.160.2"
DROP = "acct-drop@fabrikam.example"
rnd = random.Random(20260302)

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
         "ivan", "judy", "ken", "lena", "mike", "nina", "oscar", "peggy",
         "quinn", "rupert"]
OFFICE_IPS = ["198.51.100.23", "198.51.100.40", "198.51.100.41",
              "198.51.100.57", "203.0.113.10"]
BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/124.0 Safari/537.36 Edg/124.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Safari/605.1.15",
]
FILES = [
    ("Finance", "Shared Documents/Budget", "FY27 budget draft.xlsx"),
    ("Finance", "Shared Documents/Payroll", "2026-02 payroll.xlsx"),
    ("Projects", "Shared Documents", "Roadmap 2027.pptx"),
    ("Projects", "Shared Documents/Specs", "Atlas API spec.docx"),
    ("HR", "Shared Documents/Policies", "Travel policy.pdf"),
    ("Sales", "Shared Documents/Customers", "customers-q1.csv"),
]


def upn(u):
    return u + "@contoso.com"


def guid():
    return str(uuid.UUID(int=rnd.getrandbits(128), version=4))


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def base(t, op, rt, workload, user, **kw):
    r = {"CreationTime": ts(t), "Id": guid(), "Operation": op,
         "OrganizationId": TENANT, "RecordType": rt}
    r.update(kw.pop("_status", {}))
    r.update({"UserKey": kw.pop("UserKey", "10032001" + guid()[:8].upper()),
              "UserType": kw.pop("UserType", 0), "Version": 1,
              "Workload": workload})
    r.update(kw)
    r["UserId"] = r.get("UserId", user)
    return r


def entra_common(user, ip):
    return {"ActorContextId": TENANT, "ActorIpAddress": ip,
            "InterSystemsId": guid(), "IntraSystemId": guid(),
            "SupportTicketId": "", "TargetContextId": TENANT}


def signin(t, user, ip, ok=True, ua=None, request="OAuth2:Authorize",
           app="89bee1f7-5e6e-4d8a-9f3d-ecd601259da7", compliant=True,
           error="0", logon_error=None, os_name="Windows 10"):
    key = guid()
    r = base(t, "UserLoggedIn" if ok else "UserLoginFailed", 15,
             "AzureActiveDirectory", upn(user),
             _status={"ResultStatus": "Success" if ok else "Failed"},
             UserKey=key, ClientIP=ip,
             ObjectId="00000003-0000-0ff1-ce00-000000000000",
             UserId=upn(user), AzureActiveDirectoryEventType=1)
    r["ExtendedProperties"] = [
        {"Name": "ResultStatusDetail", "Value": "Success" if ok else "UserError"},
        {"Name": "UserAgent", "Value": ua or rnd.choice(BROWSERS)},
        {"Name": "RequestType", "Value": request},
        {"Name": "KeepMeSignedIn", "Value": "False"},
    ]
    r["ModifiedProperties"] = []
    r["Actor"] = [{"ID": key, "Type": 0}, {"ID": upn(user), "Type": 5}]
    r.update(entra_common(user, ip))
    r["Target"] = [{"ID": "00000003-0000-0ff1-ce00-000000000000", "Type": 0}]
    r["ApplicationId"] = app
    if compliant is not None:
        r["DeviceProperties"] = [
            {"Name": "OS", "Value": os_name},
            {"Name": "BrowserType", "Value": "Chrome"},
            {"Name": "IsCompliantAndManaged", "Value": str(compliant)},
            {"Name": "SessionId", "Value": guid()},
        ]
        if compliant:
            # a managed device: Entra knows it by id and trust type
            r["DeviceProperties"][:0] = [
                {"Name": "Id", "Value": guid()},
                {"Name": "DisplayName", "Value": "CONTOSO-" + user.upper()},
                {"Name": "TrustType", "Value": "1"}]
    r["ErrorNumber"] = error
    if logon_error:
        r["LogonError"] = logon_error
    return r


def entra_admin(t, op, actor, target, mp, ep_cat="User", ip=None):
    r = base(t, op, 8, "AzureActiveDirectory", actor,
             _status={"ResultStatus": "Success"},
             UserKey="10032001A1B2C3D4@" + ORG, ObjectId=target,
             AzureActiveDirectoryEventType=1)
    if ip:
        r["ClientIP"] = ip
    r["ExtendedProperties"] = [
        {"Name": "additionalDetails", "Value": "{}"},
        {"Name": "extendedAuditEventCategory", "Value": ep_cat}]
    r["ModifiedProperties"] = mp
    r["Actor"] = [{"ID": actor, "Type": 5}, {"ID": "10032001A1B2C3D4", "Type": 3}]
    r.update(entra_common(actor, ip or ""))
    del r["ActorIpAddress"]
    r["Target"] = [{"ID": "User_" + guid(), "Type": 2}, {"ID": target, "Type": 5}]
    return r


def exch_admin(t, op, user, obj, params, ip, user_type=2, app=None):
    r = base(t, op, 1, "Exchange", user, _status={"ResultStatus": "True"},
             UserType=user_type, ClientIP=ip, ObjectId=obj,
             AppId=app or "fb78d390-0c51-40cd-8e17-fdbfab77341b",
             ClientAppId="", ExternalAccess=False, OrganizationName=ORG,
             OriginatingServer="DM6PR11MB4012 (15.20.7452.025)")
    r["Parameters"] = [{"Name": k, "Value": v} for k, v in params]
    r["SessionId"] = guid()
    return r


def spo(t, op, user, ip, site, rel, name, rt=6, workload="SharePoint",
        ua=None, **extra):
    host = "contoso.sharepoint.com/sites/" + site
    r = base(t, op, rt, workload, upn(user),
             UserKey="i:0h.f|membership|10032001" + guid()[:8] + "@live.com",
             ClientIP=ip,
             ObjectId="https://%s/%s/%s" % (host, rel, name),
             CorrelationId=guid(), EventSource="SharePoint", ItemType="File",
             ListId=guid(), ListItemUniqueId=guid(), Site=guid(),
             UserAgent=ua or rnd.choice(BROWSERS), WebId=guid(),
             SourceFileExtension=name.rsplit(".", 1)[-1],
             SiteUrl="https://%s/" % host, SourceFileName=name,
             SourceRelativeUrl=rel)
    r.update(extra)
    return r


def mailbox(t, op, user, ip, owner=None, rt=2, **extra):
    owner = owner or user
    r = base(t, op, rt, "Exchange", upn(user),
             _status={"ResultStatus": "Succeeded"}, ClientIP=ip,
             ClientIPAddress=ip.strip("[]").split("]")[0] if ip else ip,
             ClientInfoString="Client=OWA;Action=ViaProxy",
             ExternalAccess=False, InternalLogonType=0,
             LogonType=0 if owner == user else 1,
             MailboxGuid=guid(), MailboxOwnerUPN=upn(owner),
             OrganizationName=ORG,
             OriginatingServer="DM6PR11MB4012 (15.20.7452.025)")
    r.update(extra)
    return r


def teams(t, op, user, ip, **extra):
    r = base(t, op, 25, "MicrosoftTeams", upn(user), ClientIP=ip)
    r.update(extra)
    return r


def ordinary_day(day):
    out = []
    start = dt.datetime(2026, 3, day, 7, 30)
    for u in USERS[:12]:
        t = start + dt.timedelta(minutes=rnd.randint(0, 90))
        ip = rnd.choice(OFFICE_IPS)
        out.append(signin(t, u, ip))
        for _ in range(rnd.randint(1, 2)):
            t += dt.timedelta(minutes=rnd.randint(5, 120))
            site, rel, name = rnd.choice(FILES[:5])
            op = rnd.choice(["FileAccessed", "FileModified", "FileAccessed",
                             "FileDownloaded", "FileUploaded"])
            out.append(spo(t, op, u, ip, site, rel, name))
        if rnd.random() < 0.5:
            t += dt.timedelta(minutes=rnd.randint(5, 60))
            out.append(mailbox(t, "Send", u, ip, Item={
                "Id": guid(), "InternetMessageId": "<%s@contoso.com>" % guid(),
                "ParentFolder": {"Id": guid(), "Path": "\\Sent Items"},
                "SizeInBytes": rnd.randint(2000, 90000),
                "Subject": rnd.choice(["Weekly status", "Re: budget",
                                       "Lunch?", "Atlas sync notes"])}))
        if rnd.random() < 0.3:
            t += dt.timedelta(minutes=rnd.randint(5, 60))
            out.append(mailbox(t, "MailItemsAccessed", u, ip, rt=50,
                               OperationProperties=[
                                   {"Name": "MailAccessType", "Value": "Bind"},
                                   {"Name": "IsThrottled", "Value": "False"}],
                               OperationCount=rnd.randint(1, 6)))
    return out


def intrusion():
    out = []
    t = dt.datetime(2026, 3, 4, 2, 10, 3)
    spray_ua = "python-requests/2.31.0"
    # password spray: one IP, many users, ErrorNumber 50126
    for u in USERS:
        if u == "dave":
            continue
        out.append(signin(t, u, ATTACKER_IP, ok=False, ua=spray_ua,
                          request="OrgIdWsTrust2:process", compliant=None,
                          error="50126",
                          logon_error="InvalidUserNameOrPassword",
                          app="a0c73c16-a7e3-4564-9a95-2bdf47383716"))
        t += dt.timedelta(seconds=rnd.randint(7, 20))
    out.append(signin(t, "dave", ATTACKER_IP, ua=spray_ua,
                      request="OrgIdWsTrust2:process", compliant=None,
                      app="a0c73c16-a7e3-4564-9a95-2bdf47383716"))
    # device-code phishing login, unmanaged device
    t += dt.timedelta(minutes=16)
    out.append(signin(t, "dave", ATTACKER_IP, request="Cmsi:Cmsi",
                      app="29d9ed98-a469-4536-ade2-f981bc1d605e",
                      compliant=False, os_name="Linux"))
    dave = upn("dave")
    # Global Administrator
    t += dt.timedelta(minutes=4)
    out.append(entra_admin(t, "Add member to role.", dave, dave, [
        {"Name": "Role.ObjectID", "NewValue": "62e90394-69f5-4237-9190-012177145e10", "OldValue": ""},
        {"Name": "Role.DisplayName", "NewValue": "Global Administrator", "OldValue": ""},
        {"Name": "Role.TemplateId", "NewValue": "62e90394-69f5-4237-9190-012177145e10", "OldValue": ""},
    ], ip=ATTACKER_IP))
    # MFA off for dave (and the StrongAuthenticationRequirement form on ceo)
    t += dt.timedelta(minutes=5)
    out.append(entra_admin(t, "Disable Strong Authentication.", dave, dave,
                           [], ip=ATTACKER_IP))
    t += dt.timedelta(minutes=1)
    out.append(entra_admin(t, "Update user.", dave, upn("ceo"), [
        {"Name": "StrongAuthenticationRequirement", "NewValue": "[]",
         "OldValue": "[\r\n  {\r\n    \"RelyingParty\": \"*\",\r\n    \"State\": 1,\r\n    \"RememberDevicesNotIssuedBefore\": \"2026-01-07T20:17:18+00:00\"\r\n  }\r\n]"},
        {"Name": "Included Updated Properties",
         "NewValue": "StrongAuthenticationRequirement", "OldValue": ""},
    ]))
    # consent to a mail-reading app for all users
    t += dt.timedelta(minutes=9)
    c = entra_admin(t, "Consent to application.", dave, "Mail Sync Pro", [
        {"Name": "ConsentContext.IsAdminConsent", "NewValue": "True", "OldValue": ""},
        {"Name": "ConsentContext.IsAppOnly", "NewValue": "False", "OldValue": ""},
        {"Name": "ConsentContext.OnBehalfOfAll", "NewValue": "True", "OldValue": ""},
        {"Name": "ConsentAction.Permissions",
         "NewValue": "[] => [[Id: xyz, ClientId: 7d3f..., PrincipalId: , ResourceId: 3c2b..., ConsentType: AllPrincipals, Scope:  Mail.Read Mail.Send Files.ReadWrite.All offline_access User.Read, CreatedDateTime: , LastModifiedDateTime ]]; ",
         "OldValue": ""},
        {"Name": "TargetId.ServicePrincipalNames",
         "NewValue": "5c8e3a1f-2b7d-4e6a-9f01-c2d3e4f5a6b7", "OldValue": ""},
    ], ep_cat="ApplicationManagement", ip=ATTACKER_IP)
    c["Target"] = [{"ID": "ServicePrincipal_" + guid(), "Type": 2},
                   {"ID": "Mail Sync Pro", "Type": 1}]
    out.append(c)
    # FullAccess on the CEO's mailbox
    t += dt.timedelta(minutes=10)
    out.append(exch_admin(t, "Add-MailboxPermission", dave, "ceo", [
        ("Identity", "ceo"), ("User", dave), ("AccessRights", "FullAccess"),
        ("InheritanceType", "All"), ("AutoMapping", "False")],
        ATTACKER_IP + ":50412"))
    # reading the CEO's mail from an IPv6 address
    t += dt.timedelta(minutes=3)
    out.append(mailbox(t, "MailItemsAccessed", "dave", "[2001:db8:4a::17]:51234",
                       owner="ceo", rt=50, OperationProperties=[
                           {"Name": "MailAccessType", "Value": "Bind"},
                           {"Name": "IsThrottled", "Value": "False"}],
                       OperationCount=42))
    # inbox rule: forward outside, hide the replies
    t += dt.timedelta(minutes=2)
    out.append(exch_admin(t, "New-InboxRule", dave, "ceo@contoso.com\\.", [
        ("AlwaysDeleteOutlookRulesBlob", "False"), ("Force", "False"),
        ("Mailbox", "ceo"), ("Name", "."),
        ("SubjectOrBodyContainsWords", "invoice;payment;wire"),
        ("ForwardTo", DROP), ("MarkAsRead", "True"),
        ("MoveToFolder", "RSS Subscriptions"), ("StopProcessingRules", "True")],
        "::ffff:" + ATTACKER_IP, user_type=0,
        app="00000002-0000-0ff1-ce00-000000000000"))
    # security alert about it (Data is stringified JSON)
    al = base(t + dt.timedelta(minutes=6), "AlertTriggered", 40,
              "SecurityComplianceCenter", "SecurityComplianceAlerts",
              _status={"ResultStatus": "Succeeded"},
              UserKey="SecurityComplianceAlerts", UserType=4,
              ObjectId=guid(), AlertId=guid(), AlertLinks=[],
              AlertType="System", Category="ThreatManagement",
              Comments="New alert",
              Data=json.dumps({"f3u": dave, "op": "New-InboxRule",
                               "wl": "Exchange", "tid": TENANT,
                               "an": "Suspicious email forwarding activity",
                               "sev": "High"}, separators=(",", ":")),
              Name="Suspicious email forwarding activity", PolicyId=guid(),
              Severity="High", Source="Office 365 Security & Compliance",
              Status="Active")
    out.append(al)
    # payroll exfil: downloads and an anonymous link
    t += dt.timedelta(minutes=8)
    for site, rel, name in FILES[:2] + FILES[5:]:
        out.append(spo(t, "FileDownloaded", "dave", ATTACKER_IP, site, rel,
                       name, ua="rclone/v1.66.0"))
        t += dt.timedelta(seconds=rnd.randint(3, 15))
    out.append(spo(t, "AnonymousLinkCreated", "dave", ATTACKER_IP, "Finance",
                   "Shared Documents/Payroll", "2026-02 payroll.xlsx", rt=14,
                   EventData="<Type>View</Type>", UniqueSharingId=guid()))
    # DLP: the customer list leaves by mail and by a share
    t += dt.timedelta(minutes=2)
    out.append(base(t, "DlpRuleMatch", 13, "Exchange", dave, UserKey="DlpAgent",
                    UserType=4, ObjectId="<%s@contoso.com>" % guid(),
                    IncidentId=guid(), SensitiveInfoDetectionIsIncluded=False,
                    ExchangeMetaData={"BCC": [], "CC": [], "From": dave,
                                      "MessageID": "<%s@contoso.com>" % guid(),
                                      "RecipientCount": 1, "Sent": ts(t),
                                      "Subject": "customer list",
                                      "To": [DROP]},
                    PolicyDetails=[{"PolicyId": guid(),
                                    "PolicyName": "U.S. Financial Data",
                                    "Rules": [{"Actions": ["BlockAccess", "NotifyUser", "GenerateIncidentReport"],
                                               "ConditionsMatched": {"SensitiveInformation": [{"Confidence": 85, "Count": 12, "SensitiveType": "50842eb7-edc8-4019-85dd-5a5c1f2bb085", "SensitiveInformationTypeName": "Credit Card Number", "UniqueCount": 12}]},
                                               "RuleId": guid(), "RuleMode": "Enable",
                                               "RuleName": "High volume of credit card numbers",
                                               "Severity": "High"}]}]))
    # a guest joins: Entra "Add user." with UserType Guest
    t += dt.timedelta(minutes=3)
    out.append(entra_admin(t, "Add user.", dave,
                           "partner.pm_fabrikam.example#EXT#@" + ORG, [
        {"Name": "AccountEnabled", "NewValue": "[\r\n  true\r\n]", "OldValue": "[]"},
        {"Name": "UserPrincipalName", "NewValue": "[\r\n  \"partner.pm_fabrikam.example#EXT#@contoso.onmicrosoft.com\"\r\n]", "OldValue": "[]"},
        {"Name": "UserType", "NewValue": "[\r\n  \"Guest\"\r\n]", "OldValue": "[]"},
        {"Name": "Included Updated Properties", "NewValue": "AccountEnabled, UserPrincipalName, UserType", "OldValue": ""},
    ], ip=ATTACKER_IP))
    t += dt.timedelta(minutes=1)
    out.append(teams(t, "MemberAdded", "dave", ATTACKER_IP,
                     TeamName="Finance", TeamGuid="19:%s@thread.tacv2" % guid().replace("-", ""),
                     Members=[{"DisplayName": "Partner PM (Fabrikam)", "Role": 3,
                               "UPN": "partner.pm_fabrikam.example#EXT#@" + ORG}],
                     CommunicationType="Team"))
    # unified audit logging off, last
    t += dt.timedelta(minutes=7)
    out.append(exch_admin(t, "Set-AdminAuditLogConfig", dave,
                          "Admin Audit Log Settings",
                          [("UnifiedAuditLogIngestionEnabled", "False")],
                          ATTACKER_IP + ":28491"))
    return out


def week():
    recs = []
    for day in (2, 3, 4, 5, 6):
        recs += ordinary_day(day)
    recs += intrusion()
    # a few shapes seen in real feeds: RecordType as a string, ClientIP null
    # or empty, a number as a string
    odd = signin(dt.datetime(2026, 3, 7, 10, 2, 11), "erin", "198.51.100.23")
    odd["RecordType"] = "15"
    recs.append(odd)
    odd = spo(dt.datetime(2026, 3, 7, 11, 40, 0), "FileAccessed", "frank", None,
              "HR", "Shared Documents/Policies", "Travel policy.pdf")
    recs.append(odd)
    odd = mailbox(dt.datetime(2026, 3, 8, 9, 15, 0), "MailboxLogin", "grace",
                  "", rt=2)
    recs.append(odd)
    recs.sort(key=lambda r: r["CreationTime"])
    return recs


def purview_rows():
    rows = []
    t = dt.datetime(2026, 3, 9, 1, 55, 12)
    dave = upn("dave")
    recs = [
        signin(t, "dave", ATTACKER_IP, ua="BAV2ROPC", request="OrgIdWsTrust2:process",
               compliant=None),
        exch_admin(t + dt.timedelta(minutes=3), "Set-Mailbox", dave, "ceo", [
            ("Identity", "ceo"),
            ("ForwardingSmtpAddress", "smtp:" + DROP),
            ("DeliverToMailboxAndForward", "False")], ATTACKER_IP),
        exch_admin(t + dt.timedelta(minutes=4), "Set-CASMailbox", dave, "ceo", [
            ("Identity", "ceo"), ("PopEnabled", "True"), ("ImapEnabled", "True")],
            ATTACKER_IP),
        exch_admin(t + dt.timedelta(minutes=6), "Set-InboxRule", dave, "ceo\\.", [
            ("Identity", "ceo\\."), ("DeleteMessage", "True"),
            ("SubjectContainsWords", "security;password;sign-in")],
            ATTACKER_IP, user_type=0,
            app="00000002-0000-0ff1-ce00-000000000000"),
        mailbox(t + dt.timedelta(minutes=8), "HardDelete", "dave", ATTACKER_IP,
                owner="ceo", rt=3, Folder={"Id": guid(), "Path": "\\Inbox"},
                AffectedItems=[{"Id": guid(), "Subject": "New sign-in to your account",
                                "ParentFolder": {"Id": guid(), "Path": "\\Inbox"}}]),
    ]
    for i, (site, rel, name) in enumerate(FILES):
        recs.append(spo(t + dt.timedelta(minutes=10, seconds=9 * i),
                        "FileDownloaded", "dave", ATTACKER_IP, site, rel, name,
                        ua="rclone/v1.66.0"))
    for u in ("alice", "bob", "carol"):
        recs.append(signin(t + dt.timedelta(hours=6, minutes=rnd.randint(0, 50)),
                           u, rnd.choice(OFFICE_IPS)))
    types = {1: "ExchangeAdmin", 2: "ExchangeItem", 3: "ExchangeItemGroup",
             6: "SharePointFileOperation", 15: "AzureActiveDirectoryStsLogon"}
    for r in recs:
        rows.append({
            "RecordId": r["Id"],
            "CreationDate": r["CreationTime"] + ".0000000Z",
            "RecordType": types.get(r["RecordType"], str(r["RecordType"])),
            "Operation": r["Operation"],
            "UserId": r["UserId"],
            "AuditData": json.dumps(r, separators=(",", ":")),
            "AssociatedAdminUnits": "",
            "AssociatedAdminUnitsNames": "",
        })
    return rows


def main():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples")
    recs = week()
    with open(os.path.join(here, "contoso-week.json"), "w", encoding="utf-8",
              newline="\n") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps(r, separators=(",", ":")) for r in recs))
        f.write("\n]\n")
    rows = purview_rows()
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()),
                       quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    w.writeheader()
    w.writerows(rows)
    with open(os.path.join(here, "purview-export.csv"), "w", encoding="utf-8-sig",
              newline="") as f:
        f.write(buf.getvalue())
    print("%d records in contoso-week.json, %d rows in purview-export.csv"
          % (len(recs), len(rows)))


if __name__ == "__main__":
    main()
