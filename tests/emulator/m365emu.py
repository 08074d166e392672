#!/usr/bin/env python3
"""m365emu: Office 365 Management Activity API + Entra ID token emulator.

Python 3 standard library only.  One HTTPS port (test CA) serves both the
token endpoints (/{tenant}/oauth2/token, /{tenant}/oauth2/v2.0/token) and the
API (/api/v1.0/{tenant}/activity/feed/...); a second plain-HTTP loopback port
serves the control API (/_control/...).  See README.md next to this file.
"""

import argparse
import base64
import collections
import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
import uuid

# --------------------------------------------------------------------------
# constants

CONTENT_TYPES = ["Audit.AzureActiveDirectory", "Audit.Exchange",
                 "Audit.SharePoint", "Audit.General", "DLP.All"]
CT_CANON = {c.lower(): c for c in CONTENT_TYPES}
CT_SLUG = {
    "Audit.AzureActiveDirectory": ("audit_azureactivedirectory",
                                   "Audit_AzureActiveDirectory"),
    "Audit.Exchange": ("audit_exchange", "Audit_Exchange"),
    "Audit.SharePoint": ("audit_sharepoint", "Audit_SharePoint"),
    "Audit.General": ("audit_general", "Audit_General"),
    "DLP.All": ("dlp_all", "DLP_All"),
}
DEFAULT_ROLES = ["ActivityFeed.Read", "ActivityFeed.ReadDlp",
                 "ServiceHealth.Read"]
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
CONTENT_ID_RE = re.compile(r"^\d{23}\$\d{23}\$[a-z_]+\$[A-Za-z_]+"
                           r"(\$[a-z0-9]+)?$")
API_TIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})"
                         r"(?::(\d{2})(?:\.(\d{1,7}))?)?)?(Z)?$")
DAY = 86400.0
SERVER_HEADERS = [
    ("Cache-Control", "no-cache"),
    ("Pragma", "no-cache"),
    ("Content-Type", "application/json; charset=utf-8"),
    ("Expires", "-1"),
    ("Server", "Microsoft-IIS/10.0"),
]
TRAILER_HEADERS = [
    ("X-AspNet-Version", "4.0.30319"),
    ("X-Powered-By", "ASP.NET"),
]
DLP_TYPES = [
    {"id": "50842eb7-edc8-4019-85dd-5a5c1f2bb085", "name": "CreditCardNumber"},
    {"id": "0e9b3178-9678-47dd-a509-37222ca96b42", "name": "EUDebitCardNumber"},
    {"id": "a44669fe-0d48-453d-a9b1-2cc83f2cba77",
     "name": "U.S. Social Security Number (SSN)"},
]


# token_error fault kinds: (HTTP status, error, AADSTS code, description).
# temporarily_unavailable, server_error and throttled are Entra ID
# incidents (transient); the others look like configuration errors, for a
# test that switches them off again.
TOKEN_ERRORS = {
    "temporarily_unavailable": (503, "temporarily_unavailable", 90033,
                                "A transient error has occurred. Please try "
                                "again."),
    "server_error": (500, "server_error", 50000, "There was an error issuing "
                     "a token or an issue with our sign-in service."),
    "bad_secret": (401, "invalid_client", 7000215, "Invalid client secret "
                   "provided."),
    "secret_expired": (401, "invalid_client", 7000222, "The provided client "
                       "secret keys for the app are expired."),
    "unknown_app": (400, "unauthorized_client", 700016, "Application was not "
                    "found in the directory."),
    "unknown_tenant": (400, "invalid_request", 90002, "Tenant not found. "
                       "Check to make sure you have the correct tenant ID."),
    "no_consent": (400, "invalid_grant", 65001, "The user or administrator "
                   "has not consented to use the application."),
    "throttled": (429, "temporarily_unavailable", 90055, "Tenant throttled: "
                  "too many requests."),
}


# --------------------------------------------------------------------------
# small helpers

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    if isinstance(text, str):
        text = text.encode("ascii")
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))


def parse_duration(value):
    """'90s', '15m', '2h', '7d', '-1h', '+30m', 12 -> seconds (float)."""
    if value is None:
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"\s*([+-]?)(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", str(value))
    if not m:
        raise ValueError("bad duration: %r" % (value,))
    mult = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": DAY, None: 1}[m.group(3)]
    v = float(m.group(2)) * mult
    return -v if m.group(1) == "-" else v


def parse_api_time(text):
    """API time formats -> epoch seconds (UTC) or None if not parseable."""
    m = API_TIME_RE.match(text or "")
    if not m:
        return None
    y, mo, d, hh, mm, ss, frac, _z = m.groups()
    try:
        base = time.struct_time((int(y), int(mo), int(d), int(hh or 0),
                                 int(mm or 0), int(ss or 0), 0, 0, 0))
        import calendar
        t = calendar.timegm(base)
        if not (1 <= int(mo) <= 12 and 1 <= int(d) <= 31 and int(hh or 0) < 24
                and int(mm or 0) < 60 and int(ss or 0) < 61):
            return None
    except (ValueError, OverflowError):
        return None
    if frac:
        t += int(frac.ljust(7, "0")) / 1e7
    return float(t)


def parse_time_spec(value, t0):
    """Scenario time: relative duration to t0 ('-2h'), or absolute ISO."""
    if isinstance(value, (int, float)):
        return t0 + float(value)
    s = str(value)
    if s.lower() == "now":
        return t0
    t = parse_api_time(s)
    if t is not None:
        return t
    return t0 + parse_duration(s)


def fmt_created(t):
    ms = int(round(t * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + \
        ".%03dZ" % (ms % 1000)


def fmt_7(t):
    ticks = int(round(t * 1e7))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ticks // 10000000)) + \
        ".%07dZ" % (ticks % 10000000)


def fmt_record_time(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t)))


def fmt_http_date(t):
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(t))


def digits23(t):
    """yyyyMMddHHmmss + 9-digit fraction: the 23-digit groups of real ids."""
    ticks = int(round(t * 1e6))
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(ticks // 1000000)) + \
        "%06d000" % (ticks % 1000000)


def hex_uuid(h, off=0):
    """A version-4-shaped GUID string from 32 hex digits of h at off."""
    h = h[off:off + 32]
    return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16],
                                  "89ab"[int(h[16], 16) & 3], h[17:20], h[20:32])


def det_uuid(*parts):
    """Deterministic GUID from parts (seeded record and tenant ids)."""
    return hex_uuid(hashlib.sha1("|".join(str(p) for p in parts).encode()
                                 ).hexdigest())


def canon_ct(name):
    if name is None:
        return None
    return CT_CANON.get(name.lower())


# --------------------------------------------------------------------------
# minimal DER parser, X.509 public key, RSA PKCS#1 v1.5 and PSS verification

def der_read(data, pos):
    """Return (tag, value_start, value_end) of the TLV at pos."""
    if pos + 2 > len(data):
        raise ValueError("DER: truncated")
    tag = data[pos]
    ln = data[pos + 1]
    pos += 2
    if ln & 0x80:
        n = ln & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise ValueError("DER: bad length")
        ln = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    if pos + ln > len(data):
        raise ValueError("DER: truncated value")
    return tag, pos, pos + ln


def der_children(data, start, end):
    out = []
    pos = start
    while pos < end:
        tag, vs, ve = der_read(data, pos)
        out.append((tag, vs, ve))
        pos = ve
    return out


OID_RSA = bytes.fromhex("2a864886f70d010101")


def rsa_pubkey_from_cert(der):
    """(n, e) of the RSA subjectPublicKeyInfo of a DER X.509 certificate."""
    tag, s, e = der_read(der, 0)
    if tag != 0x30:
        raise ValueError("cert: not a SEQUENCE")
    tbs_tag, ts, te = der_children(der, s, e)[0]
    if tbs_tag != 0x30:
        raise ValueError("cert: bad tbsCertificate")
    fields = der_children(der, ts, te)
    idx = 0
    if fields[0][0] == 0xA0:        # [0] version
        idx = 1
    # serial, signature, issuer, validity, subject, subjectPublicKeyInfo
    spki = fields[idx + 5]
    if spki[0] != 0x30:
        raise ValueError("cert: bad SPKI")
    alg, bits = der_children(der, spki[1], spki[2])[:2]
    oid = der_children(der, alg[1], alg[2])[0]
    if oid[0] != 0x06 or der[oid[1]:oid[2]] != OID_RSA:
        raise ValueError("cert: not an RSA key")
    if bits[0] != 0x03 or der[bits[1]] != 0:
        raise ValueError("cert: bad BIT STRING")
    ktag, ks, ke = der_read(der, bits[1] + 1)
    if ktag != 0x30:
        raise ValueError("cert: bad RSAPublicKey")
    (nt, ns, ne), (et, es, ee) = der_children(der, ks, ke)[:2]
    if nt != 0x02 or et != 0x02:
        raise ValueError("cert: bad RSA integers")
    return int.from_bytes(der[ns:ne], "big"), int.from_bytes(der[es:ee], "big")


def pem_to_der(text):
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----",
                  text, re.S)
    if not m:
        raise ValueError("no PEM certificate found")
    return base64.b64decode("".join(m.group(1).split()))


SHA256_DIGESTINFO = bytes.fromhex("3031300d060960864801650304020105000420")


def rsa_verify_pkcs1v15_sha256(n, e, message, signature):
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    t = SHA256_DIGESTINFO + hashlib.sha256(message).digest()
    if k < len(t) + 11:
        return False
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(em, expected)


def mgf1_sha256(seed, length):
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(seed + struct.pack(">I", counter)).digest()
        counter += 1
    return out[:length]


def rsa_verify_pss_sha256(n, e, message, signature, salt_len=32):
    """EMSA-PSS-VERIFY (RFC 8017 9.1.2), SHA-256, MGF1-SHA-256.
    salt_len None = accept any salt length (recovered from the encoding)."""
    mod_bits = n.bit_length()
    k = (mod_bits + 7) // 8
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    em_bits = mod_bits - 1
    em_len = (em_bits + 7) // 8
    m = pow(s, e, n)
    if m >> (em_len * 8):
        return False
    em = m.to_bytes(em_len, "big")
    h_len = 32
    m_hash = hashlib.sha256(message).digest()
    if em_len < h_len + 2 or em[-1] != 0xBC:
        return False
    masked_db = em[:em_len - h_len - 1]
    h = em[em_len - h_len - 1:-1]
    zero_bits = 8 * em_len - em_bits
    if masked_db[0] & (0xFF << (8 - zero_bits)) & 0xFF:
        return False
    db = bytes(a ^ b for a, b in zip(masked_db, mgf1_sha256(h, len(masked_db))))
    db = bytes([db[0] & (0xFF >> zero_bits)]) + db[1:]
    # DB = PS (zeros) || 0x01 || salt
    i = 0
    while i < len(db) and db[i] == 0:
        i += 1
    if i >= len(db) or db[i] != 0x01:
        return False
    salt = db[i + 1:]
    if salt_len is not None and len(salt) != salt_len:
        return False
    m_prime = b"\x00" * 8 + m_hash + salt
    return hmac.compare_digest(hashlib.sha256(m_prime).digest(), h)


class ClientCert:
    __slots__ = ("path", "der", "n", "e", "x5t", "x5t256")

    def __init__(self, path):
        self.path = path
        with open(path, "r", encoding="ascii", errors="replace") as f:
            self.der = pem_to_der(f.read())
        self.n, self.e = rsa_pubkey_from_cert(self.der)
        self.x5t = b64url(hashlib.sha1(self.der).digest())
        self.x5t256 = b64url(hashlib.sha256(self.der).digest())


# --------------------------------------------------------------------------
# record generation (templates rendered with string substitution: fast)

USERS = ["alice@contoso.com", "bob@contoso.com", "mallory@contoso.com",
         "admin@contoso.onmicrosoft.com", "ceo@contoso.com",
         "svc-backup@contoso.com"]
USER_KEYS = [det_uuid("user", i) for i in range(6)]
IP_FORMS = ["198.51.100.23", "203.0.113.77", "203.0.113.77:50412",
            "[2001:db8::abcd]:12345", "::ffff:10.11.12.13", "2001:db8::1",
            "[10.11.12.13]:12345", "192.0.2.10"]

TEMPLATES = {
    "Audit.AzureActiveDirectory": [
        '{"CreationTime":"@T","Id":"@I","Operation":"UserLoggedIn","OrganizationId":"@O","RecordType":15,"ResultStatus":"Success","UserKey":"@K","UserType":0,"Version":1,"Workload":"AzureActiveDirectory","ClientIP":"@P","ObjectId":"00000003-0000-0ff1-ce00-000000000000","UserId":"@U","AzureActiveDirectoryEventType":1,"ExtendedProperties":[{"Name":"ResultStatusDetail","Value":"Success"},{"Name":"UserAgent","Value":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"},{"Name":"UserAuthenticationMethod","Value":"1"},{"Name":"RequestType","Value":"OAuth2:Authorize"},{"Name":"KeepMeSignedIn","Value":"False"}],"ModifiedProperties":[],"Actor":[{"ID":"@K","Type":0},{"ID":"@U","Type":5}],"ActorContextId":"@O","ActorIpAddress":"198.51.100.23","InterSystemsId":"@X","IntraSystemId":"@Y","SupportTicketId":"","Target":[{"ID":"00000003-0000-0ff1-ce00-000000000000","Type":0}],"TargetContextId":"@O","ApplicationId":"89bee1f7-5e6e-4d8a-9f3d-ecd601259da7","DeviceProperties":[{"Name":"OS","Value":"Windows 10"},{"Name":"BrowserType","Value":"Chrome"},{"Name":"IsCompliantAndManaged","Value":"False"}],"ErrorNumber":"0"@Z}',
        '{"CreationTime":"@T","Id":"@I","Operation":"UserLoginFailed","OrganizationId":"@O","RecordType":15,"ResultStatus":"Failed","UserKey":"@K","UserType":0,"Version":1,"Workload":"AzureActiveDirectory","ClientIP":"@P","ObjectId":"00000002-0000-0ff1-ce00-000000000000","UserId":"@U","AzureActiveDirectoryEventType":1,"ExtendedProperties":[{"Name":"ResultStatusDetail","Value":"Success"},{"Name":"UserAgent","Value":"python-requests/2.31.0"},{"Name":"RequestType","Value":"OrgIdWsTrust2:process"}],"ModifiedProperties":[],"Actor":[{"ID":"@K","Type":0},{"ID":"@U","Type":5}],"ActorContextId":"@O","InterSystemsId":"@X","IntraSystemId":"@Y","SupportTicketId":"","Target":[{"ID":"00000002-0000-0ff1-ce00-000000000000","Type":0}],"TargetContextId":"@O","ApplicationId":"a0c73c16-a7e3-4564-9a95-2bdf47383716","ErrorNumber":"50126","LogonError":"InvalidUserNameOrPassword"@Z}',
        '{"CreationTime":"@T","Id":"@I","Operation":"Add member to role.","OrganizationId":"@O","RecordType":8,"ResultStatus":"Success","UserKey":"10032001A1B2C3D4@contoso.onmicrosoft.com","UserType":0,"Version":1,"Workload":"AzureActiveDirectory","ClientIP":null,"ObjectId":"mallory@contoso.com","UserId":"@U","AzureActiveDirectoryEventType":1,"ExtendedProperties":[{"Name":"additionalDetails","Value":"{}"},{"Name":"extendedAuditEventCategory","Value":"User"}],"ModifiedProperties":[{"Name":"Role.ObjectID","NewValue":"62e90394-69f5-4237-9190-012177145e10","OldValue":""},{"Name":"Role.DisplayName","NewValue":"Global Administrator","OldValue":""}],"Actor":[{"ID":"@U","Type":5}],"ActorContextId":"@O","InterSystemsId":"@X","IntraSystemId":"@Y","SupportTicketId":"","Target":[{"ID":"mallory@contoso.com","Type":5}],"TargetContextId":"@O"@Z}',
    ],
    "Audit.Exchange": [
        '{"CreationTime":"@T","Id":"@I","Operation":"New-InboxRule","OrganizationId":"@O","RecordType":1,"ResultStatus":"True","UserKey":"10032001A1B2C3D5","UserType":0,"Version":1,"Workload":"Exchange","ClientIP":"@P","ObjectId":"@U\\\\.","UserId":"@U","AppId":"00000002-0000-0ff1-ce00-000000000000","ClientAppId":"","ExternalAccess":false,"OrganizationName":"contoso.onmicrosoft.com","OriginatingServer":"DM6PR11MB4012 (15.20.7452.025)","Parameters":[{"Name":"AlwaysDeleteOutlookRulesBlob","Value":"False"},{"Name":"Force","Value":"False"},{"Name":"Name","Value":"."},{"Name":"SubjectOrBodyContainsWords","Value":"invoice;payment;wire"},{"Name":"ForwardTo","Value":"acct-drop@fabrikam.example"},{"Name":"MarkAsRead","Value":"True"},{"Name":"StopProcessingRules","Value":"True"}],"SessionId":"@X"@Z}',
        '{"CreationTime":"@T","Id":"@I","Operation":"Set-Mailbox","OrganizationId":"@O","RecordType":1,"ResultStatus":"True","UserKey":"10032001A1B2C3D4","UserType":2,"Version":1,"Workload":"Exchange","ClientIP":"@P","ObjectId":"bob","UserId":"@U","AppId":"fb78d390-0c51-40cd-8e17-fdbfab77341b","ClientAppId":"","ExternalAccess":false,"OrganizationName":"contoso.onmicrosoft.com","OriginatingServer":"DM6PR11MB4012 (15.20.7452.025)\\n","Parameters":[{"Name":"Identity","Value":"bob"},{"Name":"ForwardingSmtpAddress","Value":"smtp:bob.personal@mail.example"},{"Name":"DeliverToMailboxAndForward","Value":"False"}]@Z}',
        '{"CreationTime":"@T","Id":"@I","Operation":"MailItemsAccessed","OrganizationId":"@O","RecordType":50,"ResultStatus":"Succeeded","UserKey":"10032001A1B2C3D5","UserType":0,"Version":1,"Workload":"Exchange","ClientIP":"@P","UserId":"@U","AppId":"00000002-0000-0ff1-ce00-000000000000","ClientAppId":"d3590ed6-52b3-4102-aeff-aad2292ab01c","ClientIPAddress":"@P","ClientInfoString":"Client=REST;Client=RESTSystem;;","ExternalAccess":false,"InternalLogonType":0,"LogonType":0,"MailboxGuid":"@X","MailboxOwnerUPN":"@U","OperationProperties":[{"Name":"MailAccessType","Value":"Bind"},{"Name":"IsThrottled","Value":"False"}],"OrganizationName":"contoso.onmicrosoft.com","OriginatingServer":"DM6PR11MB4012 (15.20.7452.025)","SessionId":"@Y","OperationCount":2,"Folders":[{"Id":"LgAAAADkF0ZqS8VHQ6sbK4Sd4Jp2AQB1","Path":"\\\\Inbox","FolderItems":[{"Id":"RgAAAADkF0ZqS8VHQ6sbK4Sd4Jp2BwB1","InternetMessageId":"<BY5PR11MB3987A1@BY5PR11MB3987.namprd11.prod.outlook.com>","SizeInBytes":48213}]}]@Z}',
        '{"CreationTime":"@T","Id":"@I","Operation":"SendAs","OrganizationId":"@O","RecordType":2,"ResultStatus":"Succeeded","UserKey":"10032001E5F6A7B8","UserType":0,"Version":1,"Workload":"Exchange","ClientIP":"@P","UserId":"@U","ClientIPAddress":"@P","ClientInfoString":"Client=OWA;Action=ViaProxy","ExternalAccess":false,"InternalLogonType":0,"LogonType":2,"MailboxGuid":"@X","MailboxOwnerUPN":"ceo@contoso.com","OrganizationName":"contoso.onmicrosoft.com","SendAsUserSmtp":"ceo@contoso.com","Item":{"Id":"RgAAAAB9sZ1cQ0xVRZc5yXv4qJmCBwCyR3s1","InternetMessageId":"<DM6PR11MB4012C3@DM6PR11MB4012.namprd11.prod.outlook.com>","ParentFolder":{"Id":"LgAAAAB9sZ1cQ0xVRZc5","Path":"\\\\Sent Items"},"SizeInBytes":15530,"Subject":"Urgent: updated bank details"},"SaveToSentItems":true@Z}',
    ],
    "Audit.SharePoint": [
        '{"CreationTime":"@T","Id":"@I","Operation":"FileDownloaded","OrganizationId":"@O","RecordType":6,"UserKey":"i:0h.f|membership|10032001e5f6a7b8@live.com","UserType":0,"Version":1,"Workload":"SharePoint","ClientIP":"@P","ObjectId":"https://contoso.sharepoint.com/sites/Finance/Shared Documents/Payroll/2026-02 payroll.xlsx","UserId":"@U","CorrelationId":"@X","EventSource":"SharePoint","ItemType":"File","ListId":"c4b3a291-8f7e-4d6c-b5a4-938271605f4e","ListItemUniqueId":"@Y","Site":"a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d","UserAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0","WebId":"b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e","SourceFileExtension":"xlsx","SiteUrl":"https://contoso.sharepoint.com/sites/Finance/","SourceFileName":"2026-02 payroll.xlsx","SourceRelativeUrl":"Shared Documents/Payroll"@Z}',
        '{"CreationTime":"@T","Id":"@I","Operation":"AnonymousLinkCreated","OrganizationId":"@O","RecordType":14,"UserKey":"i:0h.f|membership|10032001e5f6a7b8@live.com","UserType":0,"Version":1,"Workload":"OneDrive","ClientIP":"@P","ObjectId":"https://contoso-my.sharepoint.com/personal/mallory_contoso_com/Documents/export/customers.csv","UserId":"@U","CorrelationId":"@X","EventSource":"SharePoint","ItemType":"File","Site":"c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f","UserAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0","EventData":"<Type>View</Type>","SourceFileExtension":"csv","SiteUrl":"https://contoso-my.sharepoint.com/personal/mallory_contoso_com/","SourceFileName":"customers.csv","SourceRelativeUrl":"Documents/export","UniqueSharingId":"@Y"@Z}',
        '{"CreationTime":"@T","Id":"@I","Operation":"AddedToSecureLink","OrganizationId":"@O","RecordType":14,"UserKey":"i:0h.f|membership|10032001a1b2c3d5@live.com","UserType":0,"Version":1,"Workload":"SharePoint","ClientIP":"@P","ObjectId":"https://contoso.sharepoint.com/sites/Projects/Shared Documents/Roadmap 2027.pptx","UserId":"@U","CorrelationId":"@X","EventSource":"SharePoint","ItemType":"File","Site":"e5f6a7b8-c9d0-4e1f-9a2b-3c4d5e6f7a8b","UserAgent":"Microsoft Office PowerPoint/16.0","EventData":"<PermissionsGranted>Read</PermissionsGranted>","TargetUserOrGroupName":"partner.pm@fabrikam.example","TargetUserOrGroupType":"Guest","SourceFileExtension":"pptx","SiteUrl":"https://contoso.sharepoint.com/sites/Projects/","SourceFileName":"Roadmap 2027.pptx","SourceRelativeUrl":"Shared Documents","UniqueSharingId":"@Y"@Z}',
    ],
    "Audit.General": [
        '{"CreationTime":"@T","Id":"@I","Operation":"MemberAdded","OrganizationId":"@O","RecordType":25,"UserKey":"7a1e0c52-93d4-4b8e-9f21-3d6c5b4a2e10","UserType":0,"Version":1,"Workload":"MicrosoftTeams","UserId":"@U","ClientIP":"@P","ItemName":"Project Atlas","TeamName":"Project Atlas","TeamGuid":"19:2f6b3c8d9e0a4b1c8d7e6f5a4b3c2d1e@thread.tacv2","Members":[{"DisplayName":"Partner PM (Fabrikam)","Role":2,"UPN":"partner.pm_fabrikam.example#EXT#@contoso.onmicrosoft.com"}],"CommunicationType":"Team"@Z}',
        '{"CreationTime":"@T","Id":"@I","Operation":"AlertTriggered","OrganizationId":"@O","RecordType":40,"ResultStatus":"Succeeded","UserKey":"SecurityComplianceAlerts","UserType":4,"Version":1,"Workload":"SecurityComplianceCenter","ObjectId":"@X","UserId":"SecurityComplianceAlerts","AlertId":"@X","AlertLinks":[],"AlertType":"System","Category":"ThreatManagement","Comments":"New alert","Data":"{\\"f3u\\":\\"@U\\",\\"op\\":\\"New-InboxRule\\",\\"wl\\":\\"Exchange\\",\\"an\\":\\"Suspicious email forwarding activity\\",\\"sev\\":\\"High\\"}","Name":"Suspicious email forwarding activity","PolicyId":"7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0f","Severity":"High","Source":"Office 365 Security & Compliance","Status":"Active"@Z}',
        '{"CreationTime":"@T","Id":"@I","Operation":"ViewReport","OrganizationId":"@O","RecordType":20,"ResultStatus":"Succeeded","UserKey":"10032001A1B2C3D4","UserType":0,"Version":1,"Workload":"PowerBI","UserId":"@U","ClientIP":"@P","Activity":"ViewReport","ItemName":"Sales","OperationProperties":"[{\\"Name\\":\\"ReportId\\",\\"Value\\":\\"@Y\\"}]"@Z}',
    ],
    "DLP.All": [
        '{"CreationTime":"@T","Id":"@I","Operation":"DlpRuleMatch","OrganizationId":"@O","RecordType":13,"UserKey":"DlpAgent","UserType":4,"Version":1,"Workload":"Exchange","ObjectId":"<DM6PR11MB4012D4@DM6PR11MB4012.namprd11.prod.outlook.com>","UserId":"@U","IncidentId":"@X","SensitiveInfoDetectionIsIncluded":false,"ExchangeMetaData":{"BCC":[],"CC":[],"From":"@U","MessageID":"<DM6PR11MB4012D4@DM6PR11MB4012.namprd11.prod.outlook.com>","RecipientCount":1,"Sent":"@T","Subject":"customer list","To":["mallory.home@mail.example"]},"PolicyDetails":[{"PolicyId":"2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e","PolicyName":"U.S. Financial Data","Rules":[{"Actions":["BlockAccess","NotifyUser"],"ConditionsMatched":{"SensitiveInformation":[{"Confidence":85,"Count":12,"SensitiveType":"50842eb7-edc8-4019-85dd-5a5c1f2bb085","UniqueCount":12}]},"RuleId":"3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f","RuleMode":"Enable","RuleName":"High volume of credit card numbers","Severity":"High"}]}]@Z}',
        '{"CreationTime":"@T","Id":"@I","Operation":"DlpRuleMatch","OrganizationId":"@O","RecordType":11,"UserKey":"DlpAgent","UserType":4,"Version":1,"Workload":"OneDrive","ObjectId":"https://contoso-my.sharepoint.com/personal/mallory_contoso_com/Documents/export/customers.csv","UserId":"@U","SensitiveInfoDetectionIsIncluded":false,"SharePointMetaData":{"FileName":"customers.csv","FileOwner":"@U","From":"LastSharer","IsViewableByExternalUsers":true,"UniqueId":"@Y"},"PolicyDetails":[{"PolicyId":"2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e","PolicyName":"U.S. Financial Data","Rules":[{"Actions":["RestrictAccess"],"RuleId":"4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f7a","RuleMode":"Enable","RuleName":"Shared externally","Severity":"High"}]}]@Z}',
    ],
}
# Oddities sometimes substituted into records (realism knob "oddities").
ODD_EXTRA = [
    ',"EmuOdd":"lone surrogate \\ud800 here"',
    ',"EmuOdd":"\\u00e9t\\u00e9 \\ud83d\\ude00"',
    ',"RecordTypeHint":"7","EmuOdd":""',
]
# An unknown RecordType/Operation (oddities): must be kept, never dropped.
ODD_TEMPLATE = '{"CreationTime":"@T","Id":"@I","Operation":"EmuFutureOperation","OrganizationId":"@O","RecordType":9999,"UserKey":"@K","UserType":"0","Version":1,"Workload":"EmuWorkload","UserId":"@U","ClientIP":"@P","ObjectId":"","NewField":{"Nested":[1,"two",null]}@Z}'
_TPL_RE = re.compile(r"@([TIOKPUXYZ])")
# Pre-split templates: [literal, key, literal, key, ..., literal].
SPLIT_TEMPLATES = {ct: [_TPL_RE.split(t) for t in tpls]
                   for ct, tpls in TEMPLATES.items()}
SPLIT_ODD = _TPL_RE.split(ODD_TEMPLATE)


def render_record(parts, values):
    out = parts[:]
    for i in range(1, len(out), 2):
        out[i] = values[out[i]]
    return "".join(out)


# --------------------------------------------------------------------------
# model

class Blob:
    __slots__ = ("seq", "tenant", "ct", "content_id", "created", "cms",
                 "available",
                 "expiration", "n", "base_seq", "age_s", "dups", "records",
                 "served", "served_records", "odd")

    def __init__(self):
        self.dups = None
        self.records = None
        self.served = 0
        self.served_records = 0
        self.age_s = 0.0
        self.odd = 0.0


class Stream:
    """One (tenant, content type)."""

    def __init__(self, tenant, ct):
        self.tenant = tenant
        self.ct = ct
        self.blobs = []
        self.sorted = True
        self.next_seq = 1
        self.status = None            # None (never), "enabled", "disabled"
        self.intervals = []           # [start, stop or None]
        self.first_start = None
        self.last_start = None
        self.webhook = None
        self.webhook_app = None       # app id that set the webhook
        self.notified = set()         # content ids already notified
        self.pending = []             # [(due, attempt, [blob, ...])]
        self.notifications = []       # history for /notifications
        self.gen_every = None         # continuous generation
        self.gen_next = None
        self.gen_spec = None

    def enabled_at(self, t):
        for a, b in self.intervals:
            if a <= t and (b is None or t < b):
                return True
        return False


class Tenant:
    def __init__(self, tid, index):
        self.id = tid
        self.index = index
        self.domain = None
        self.audit_enabled = True
        self.quota = 2000
        self.quota_hits = collections.deque()
        self.streams = {}
        self.clients = None
        self.revoke_before = 0.0
        self.page_size = None
        self.first_data_delay = 0.0
        self.region = "emea%04d" % (index % 10000)

    def stream(self, ct):
        s = self.streams.get(ct)
        if s is None:
            s = self.streams[ct] = Stream(self, ct)
        return s


class Client:
    def __init__(self, spec, base_dir):
        self.client_id = spec["client_id"].lower()
        self.secrets = []
        if "secret" in spec:
            self.secrets.append(spec["secret"])
        self.secrets += spec.get("secrets", [])
        self.secret_expired = bool(spec.get("secret_expired", False))
        self.roles = list(spec.get("roles", DEFAULT_ROLES))
        self.disabled = bool(spec.get("disabled", False))
        self.certs = []
        for p in spec.get("certificates", []) + (
                [spec["certificate_file"]] if "certificate_file" in spec else []):
            p = os.path.expandvars(p)
            path = p if os.path.isabs(p) else os.path.join(base_dir, p)
            self.certs.append(ClientCert(path))


class EmuError(Exception):
    """An API error response."""

    def __init__(self, status, body, headers=None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or []


def af_error(status, code, message):
    return EmuError(status, {"error": {"code": code, "message": message}})


SCENARIO_KEYS = {
    "": {"seed", "clients", "tenants", "tenant_template", "resource",
         "strict_tenant", "page_size", "latency", "token_lifetime",
         "start_throttle", "retention", "max_window", "start_grace",
         "time_error_code", "throttle_style", "retry_after", "nextpage_header",
         "assertion_skew", "publisher_quota", "date_header", "login_hosts",
         "cache_mb", "seq_field", "oddities", "clock_offset", "clock_start",
         "blob_expired_status",
         "quota_per_minute", "first_data_delay", "pregenerate",
         "webhook_ca_file", "faults", "comment"},
    "client": {"client_id", "secret", "secrets", "secret_expired", "roles",
               "disabled", "certificates", "certificate_file", "comment"},
    "tenant": {"id", "domain", "audit_enabled", "quota_per_minute",
               "page_size", "first_data_delay", "clients", "subscribed",
               "subscribed_since", "content", "blobs", "count", "comment"},
    "content": {"blobs", "records_per_blob", "span", "end", "oddities",
                "files", "late", "late_delay", "out_of_order",
                "old_records_age", "duplicates", "every", "comment"},
}


def check_keys(kind, obj, where):
    if not isinstance(obj, dict):
        raise ValueError("%s: expected an object" % where)
    unknown = set(obj) - SCENARIO_KEYS[kind]
    if unknown:
        raise ValueError("%s: unknown key(s) %s" % (where,
                                                     ", ".join(sorted(unknown))))


def check_scenario(sc):
    check_keys("", sc, "scenario")
    for i, c in enumerate(sc.get("clients", [])):
        check_keys("client", c, "clients[%d]" % i)
    tl = list(sc.get("tenants", []))
    if sc.get("tenant_template"):
        tl.append(sc["tenant_template"])
    for i, t in enumerate(tl):
        check_keys("tenant", t, "tenants[%d]" % i)
        for j, c in enumerate(t.get("clients", [])):
            check_keys("client", c, "tenants[%d].clients[%d]" % (i, j))
        for ct, c in (t.get("content") or {}).items():
            if canon_ct(ct) is None:
                raise ValueError("tenants[%d].content: unknown content type %s"
                                 % (i, ct))
            check_keys("content", c, "tenants[%d].content.%s" % (i, ct))


class Emulator:
    def __init__(self, scenario, base_dir=".", seed=None):
        check_scenario(scenario)
        self.lock = threading.RLock()
        self.sc = scenario
        self.base_dir = base_dir
        self.seed = seed if seed is not None else scenario.get("seed", 1)
        self.rng = random.Random(self.seed)
        self.fault_rng = random.Random("faults:%s" % self.seed)
        self.offset = parse_duration(scenario.get("clock_offset", 0))
        if scenario.get("clock_start"):
            start = parse_api_time(scenario["clock_start"])
            if start is None:
                raise ValueError("clock_start: bad time %r"
                                 % scenario["clock_start"])
            self.offset = start - time.time()
        self.t0 = time.time() + self.offset
        self.signing_key = hashlib.sha256(
            ("m365emu:%s" % (self.seed,)).encode()).digest()
        self.resource = scenario.get("resource", "https://manage.office.com")
        self.strict_tenant = bool(scenario.get("strict_tenant", False))
        self.page_size = int(scenario.get("page_size", 100))
        self.latency = parse_duration(scenario.get("latency", 0))
        self.token_lifetime = scenario.get("token_lifetime", 3599)
        self.start_throttle = parse_duration(scenario.get("start_throttle", "15m"))
        self.retention = parse_duration(scenario.get("retention", "7d"))
        self.max_window = parse_duration(scenario.get("max_window", "24h"))
        self.start_grace = parse_duration(scenario.get("start_grace", 0))
        self.time_error_code = scenario.get("time_error_code", "AF20055")
        self.blob_expired_status = int(scenario.get("blob_expired_status", 400))
        self.throttle_style = scenario.get("throttle_style", "403")
        self.retry_after = scenario.get("retry_after", 5)
        self.nextpage_header = scenario.get("nextpage_header", "NextPageUri")
        self.assertion_skew = parse_duration(scenario.get("assertion_skew", "5m"))
        self.publisher_quota = scenario.get("publisher_quota")
        self.publisher_hits = {}
        self.date_header = scenario.get("date_header", "virtual")
        self.login_hosts = scenario.get("login_hosts", [
            "login.microsoftonline.com", "login.windows.net"])
        self.cache_limit = int(float(scenario.get("cache_mb", 256)) * 2**20)
        self.cache = collections.OrderedDict()
        self.cache_bytes = 0
        self.seq_field = scenario.get("seq_field", "EmuSeq")
        self.oddities = float(scenario.get("oddities", 0.0))
        self.tenants = {}
        self.webhook_streams = set()
        self.by_domain = {}
        self.blobs = {}
        self.blob_seq = 0
        self.jti_seen = {}
        self.faults = []
        self.fault_id = 0
        self.stats = collections.Counter()
        self.stats_misc = collections.Counter()
        self.clients = [Client(c, base_dir) for c in scenario.get("clients", [])]
        tlist = list(scenario.get("tenants", []))
        tmpl = scenario.get("tenant_template")
        if tmpl:
            for i in range(int(tmpl.get("count", 0))):
                t = dict(tmpl)
                t.pop("count", None)
                t["id"] = det_uuid("tenant", self.seed, i)
                t["domain"] = "tenant%04d.onmicrosoft.com" % i
                tlist.append(t)
        for spec in tlist:
            self._add_tenant(spec)
        if scenario.get("faults"):
            self.add_faults(scenario["faults"])

    # ---- clock

    def now(self):
        return time.time() + self.offset

    def advance(self, seconds):
        with self.lock:
            self.offset += seconds

    # ---- setup

    def _add_tenant(self, spec):
        tid = spec["id"].lower()
        t = Tenant(tid, len(self.tenants))
        t.domain = (spec.get("domain") or "").lower() or None
        t.audit_enabled = bool(spec.get("audit_enabled", True))
        t.quota = int(spec.get("quota_per_minute", self.sc.get("quota_per_minute", 2000)))
        t.page_size = spec.get("page_size")
        t.first_data_delay = parse_duration(spec.get("first_data_delay",
                                                     self.sc.get("first_data_delay", 0)))
        if "clients" in spec:
            t.clients = [Client(c, self.base_dir) for c in spec["clients"]]
        self.tenants[tid] = t
        if t.domain:
            self.by_domain[t.domain] = t
        subs = spec.get("subscribed", "all")
        since = parse_time_spec(spec.get("subscribed_since", "-30d"), self.t0)
        if subs == "all":
            subs = CONTENT_TYPES
        elif subs in (None, "none"):
            subs = []
        for ct in subs:
            if canon_ct(ct) is None:
                raise ValueError("tenant %s: subscribed: unknown content type "
                                 "%s" % (tid, ct))
            s = t.stream(canon_ct(ct))
            s.status = "enabled"
            s.intervals.append([since, None])
            s.first_start = s.last_start = since
        for ct, cspec in (spec.get("content") or {}).items():
            cc = canon_ct(ct)
            if cc is None:
                raise ValueError("unknown content type %r" % ct)
            self._gen_content(t, t.stream(cc), cspec)
        for b in spec.get("blobs", []):
            cc = canon_ct(b.get("contentType"))
            if cc is None:
                raise ValueError("tenant %s: blobs: unknown content type %s"
                                 % (tid, b.get("contentType")))
            self.publish(t, cc, b, self.t0)

    def _records_from_files(self, files):
        out = []
        for p in files:
            p = os.path.expandvars(p)
            path = p if os.path.isabs(p) else os.path.join(self.base_dir, p)
            with open(path, "r", encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
            try:
                v = json.loads(text)
                out.extend(v if isinstance(v, list) else [v])
                continue
            except ValueError:
                pass
            for line in text.splitlines():
                line = line.strip()
                if not line:
                    continue
                v = json.loads(line)
                out.extend(v if isinstance(v, list) else [v])
        return out

    def _gen_content(self, t, s, c):
        """Generate blobs for a stream from a content spec (see README)."""
        rng = random.Random("%s:%s:%s" % (self.seed, t.id, s.ct))
        nblobs = int(c.get("blobs", 0))
        per = int(c.get("records_per_blob", 10))
        span = parse_duration(c.get("span", "6h"))
        end = parse_time_spec(c.get("end", 0), self.t0)
        start = end - span
        odd = float(c.get("oddities", self.oddities))
        records = self._records_from_files(c["files"]) if c.get("files") else None
        made = []
        if records is not None:
            nblobs = max(1, (len(records) + per - 1) // per)
        for i in range(nblobs):
            created = start + (i + 0.5) * span / max(nblobs, 1)
            created += rng.uniform(-0.2, 0.2) * span / max(nblobs, 1)
            spec = {"created": created, "records": per, "oddities": odd}
            if records is not None:
                spec["record_list"] = records[i * per:(i + 1) * per]
            made.append(self._new_blob(t, s, spec))
        # realism knobs
        late = int(c.get("late", 0))
        late_delay = parse_duration(c.get("late_delay", "2h"))
        for b in rng.sample(made, min(late, len(made))):
            b.available = b.created + late_delay
        ooo = int(c.get("out_of_order", 0))
        old_h = parse_duration(c.get("old_records_age", "5h"))
        for b in rng.sample(made, min(ooo, len(made))):
            b.age_s = old_h
        dups = int(c.get("duplicates", 0))
        if len(made) >= 2:
            for _ in range(dups):
                i = rng.randrange(0, len(made) - 1)
                src, dst = made[i], made[rng.randrange(i + 1, len(made))]
                if src.n == 0:
                    continue
                if dst.dups is None:
                    dst.dups = []
                dst.dups.append((src, rng.randrange(src.n)))
        if "every" in c:
            s.gen_every = parse_duration(c["every"])
            s.gen_next = end + s.gen_every
            s.gen_spec = {"records": per, "oddities": odd}
        return made

    def _new_blob(self, t, s, spec):
        b = Blob()
        with self.lock:
            self.blob_seq += 1
            b.seq = self.blob_seq
            b.tenant = t
            b.ct = s.ct
            b.cms = int(round(spec["created"] * 1000))   # ms, as listed
            b.created = b.cms / 1000.0
            b.available = spec.get("available", b.created)
            b.expiration = b.created + self.retention
            recs = spec.get("record_list")
            if recs is not None:
                b.records = []
                for r in recs:
                    if isinstance(r, dict):
                        b.records.append(r)
                b.n = len(b.records)
            else:
                b.n = int(spec.get("records", 10))
            b.base_seq = s.next_seq
            s.next_seq += b.n
            b.age_s = float(spec.get("age", 0.0))
            b.odd = float(spec.get("oddities", self.oddities))
            slug = CT_SLUG[s.ct]
            frac = digits23(b.created)
            cid = None
            bump = 0
            while cid is None or cid in self.blobs:
                d = str(int(frac) + bump).rjust(23, "0")
                cid = "%s$%s$%s$%s$%s" % (d, d, slug[0], slug[1], t.region)
                bump += 1
            b.content_id = cid
            self.blobs[cid] = b
            s.blobs.append(b)
            s.sorted = False
        return b

    def publish(self, t, ct, spec, now=None):
        """Add one or more blobs (control API / scenario 'blobs')."""
        s = t.stream(ct)
        now = self.now() if now is None else now
        out = []
        count = int(spec.get("count", 1))
        created0 = parse_time_spec(spec.get("created", 0), now)
        for i in range(count):
            bspec = {"created": created0 + i * 0.001 * 7,
                     "records": int(spec.get("records", 10)),
                     "age": parse_duration(spec.get("age", 0)),
                     "oddities": spec.get("oddities", self.oddities)}
            if "available" in spec:
                bspec["available"] = parse_time_spec(spec["available"], now)
            if "record_list" in spec:
                bspec["record_list"] = spec["record_list"]
            elif "files" in spec:
                bspec["record_list"] = self._records_from_files(spec["files"])
            b = self._new_blob(t, s, bspec)
            for ref in spec.get("duplicate_of", []):
                src = self.blobs.get(ref.get("contentId"))
                if src is not None and src.n:
                    if b.dups is None:
                        b.dups = []
                    for idx in ref.get("indexes", [0]):
                        b.dups.append((src, int(idx) % src.n))
            out.append(b)
        return out

    def _generate_due(self, s, now):
        if s.gen_every is None:
            return
        while s.gen_next is not None and s.gen_next <= now:
            self._new_blob(s.tenant, s, {"created": s.gen_next,
                                         "records": s.gen_spec["records"],
                                         "oddities": s.gen_spec["oddities"]})
            s.gen_next += s.gen_every

    # ---- record/body generation

    def record_texts(self, b):
        """List of (Id, json text) of a blob's records, dups included."""
        out = []
        if b.records is not None:
            for r in b.records:
                out.append((str(r.get("Id")), json.dumps(r, ensure_ascii=False)))
        else:
            rng = self._blob_rng(b)
            tpls = SPLIT_TEMPLATES[b.ct]
            for i in range(b.n):
                out.append(self._gen_record(b, i, rng, tpls))
        if b.dups:
            for src, idx in b.dups:
                out.append(self.record_one(src, idx))
        return out

    def record_one(self, b, idx):
        if b.records is not None:
            r = b.records[idx]
            return (str(r.get("Id")), json.dumps(r, ensure_ascii=False))
        rng = self._blob_rng(b)
        tpls = SPLIT_TEMPLATES[b.ct]
        res = None
        for i in range(idx + 1):
            res = self._gen_record(b, i, rng, tpls)
        return res

    def _blob_rng(self, b):
        return random.Random("%s:%s:%s:%d" % (self.seed, b.tenant.id, b.ct,
                                              b.base_seq))

    def _record_id(self, b, i):
        return det_uuid(self.seed, b.tenant.id, b.ct, b.base_seq + i)

    def _gen_record(self, b, i, rng, tpls):
        rid = self._record_id(b, i)
        ts = b.created - b.age_s - rng.uniform(0, 600)
        extra = ""
        if self.seq_field:
            extra = ',"%s":%d' % (self.seq_field, b.base_seq + i)
        odd_roll = rng.random()
        if odd_roll < b.odd:
            extra += ODD_EXTRA[int(odd_roll * 1000) % len(ODD_EXTRA)]
        xy = hashlib.sha256(rid.encode()).hexdigest()
        vals = {
            "T": fmt_record_time(ts), "I": rid, "O": b.tenant.id,
            "K": USER_KEYS[rng.randrange(6)],
            "P": IP_FORMS[rng.randrange(len(IP_FORMS))],
            "U": USERS[rng.randrange(len(USERS))],
            "X": hex_uuid(xy, 0), "Y": hex_uuid(xy, 32), "Z": extra,
        }
        tpl = tpls[i % len(tpls)]
        if odd_roll < b.odd / 4:
            tpl = SPLIT_ODD
        return (rid, render_record(tpl, vals))

    def blob_ids(self, b):
        if b.records is None and not b.dups:
            return [self._record_id(b, i) for i in range(b.n)]
        return [rid for rid, _ in self.record_texts(b)]

    def blob_body(self, b):
        with self.lock:
            body = self.cache.get(b.content_id)
            if body is not None:
                self.cache.move_to_end(b.content_id)
                return body
        texts = self.record_texts(b)
        body = ("[" + ",".join(t for _, t in texts) + "]").encode(
            "utf-8", "surrogatepass")
        with self.lock:
            if b.content_id not in self.cache and len(body) < self.cache_limit:
                self.cache[b.content_id] = body
                self.cache_bytes += len(body)
                while self.cache_bytes > self.cache_limit:
                    _, old = self.cache.popitem(last=False)
                    self.cache_bytes -= len(old)
        return body

    def pregenerate(self, stop=None):
        """Serialize blob bodies ahead of requests, oldest first, until the
        cache is full (run in a background thread by default)."""
        with self.lock:
            todo = sorted(self.blobs.values(), key=lambda b: b.created)
        for b in todo:
            if stop is not None and stop.is_set():
                return
            if self.cache_bytes + b.n * 1500 > self.cache_limit:
                return
            self.blob_body(b)

    # ---- webhook notifications

    def notify_once(self, host):
        """Queue and send due notifications (called by the notifier thread)."""
        now = self.now()
        sends = []
        with self.lock:
            for s in list(self.webhook_streams):
                wh = s.webhook
                if not wh or wh.get("status") != "enabled":
                    continue
                exp = wh.get("expiration")
                if exp and parse_api_time(str(exp).rstrip("Z")) is not None \
                        and parse_api_time(str(exp).rstrip("Z")) <= now:
                    wh["status"] = "expired"
                    continue
                self._generate_due(s, now)
                new = [b for b in s.blobs if b.content_id not in s.notified
                       and b.available <= now and s.enabled_at(b.created)
                       and s.status == "enabled"]
                for b in new:
                    s.notified.add(b.content_id)
                if new:
                    s.pending.append([now, 0, new])
                due = [p for p in s.pending if p[0] <= now]
                s.pending = [p for p in s.pending if p[0] > now]
                for p in due:
                    sends.append((s, dict(wh), p))
        for s, wh, p in sends:
            root = "https://%s/api/v1.0/%s/activity/feed" % (host, s.tenant.id)
            items = [{"tenantId": s.tenant.id, "clientId": s.webhook_app,
                      "contentType": b.ct, "contentId": b.content_id,
                      "contentUri": root + "/audit/" + b.content_id,
                      "contentCreated": fmt_created(b.created),
                      "contentExpiration": fmt_created(b.expiration)}
                     for b in p[2]]
            ok = self.post_json(wh["address"], items, {"Webhook-AuthID":
                                                       wh.get("authId")})
            with self.lock:
                sent = fmt_created(self.now())
                for it in items:
                    h = dict(it)
                    h["notificationSent"] = sent
                    h["notificationStatus"] = "success" if ok else "failed"
                    s.notifications.append(h)
                self.stats_misc["webhook_%s" % ("ok" if ok else "failed")] += 1
                if not ok and p[1] < 5:
                    s.pending.append([self.now() + 2 ** p[1], p[1] + 1, p[2]])

    def post_json(self, addr, payload, headers):
        """POST to a webhook (header names sent exactly as given)."""
        u = urllib.parse.urlsplit(addr)
        if u.scheme != "https" or not u.hostname:
            return False
        hdrs = {"Content-Type": "application/json; charset=utf-8"}
        hdrs.update({k: v for k, v in headers.items() if v})
        try:
            ctx = ssl.create_default_context(
                cafile=self.sc.get("webhook_ca_file"))
            conn = http.client.HTTPSConnection(u.hostname, u.port or 443,
                                               context=ctx, timeout=5)
            try:
                conn.request("POST", (u.path or "/") + ("?" + u.query if u.query
                                                        else ""),
                             json.dumps(payload).encode(), hdrs)
                return conn.getresponse().status == 200
            finally:
                conn.close()
        except (OSError, ValueError, http.client.HTTPException):
            return False

    # ---- tokens

    def find_tenant(self, name):
        name = (name or "").lower()
        return self.tenants.get(name) or self.by_domain.get(name)

    def find_client(self, tenant, client_id):
        cid = (client_id or "").lower()
        for c in (tenant.clients if tenant.clients is not None else self.clients):
            if c.client_id == cid:
                return c
        return None

    def token_lifetime_for(self, rng_key):
        lt = self.token_lifetime
        if lt == "random":
            return random.Random(rng_key).randint(3600, 5400)
        return int(parse_duration(lt))

    def issue_token(self, tenant, client, appidacr):
        now = int(self.now())
        with self.lock:
            self.stats_misc["tokens_issued"] += 1
            n = self.stats_misc["tokens_issued"]
        life = self.token_lifetime_for("%s:%d" % (self.seed, n))
        claims = {
            "aud": self.resource, "iss": "https://sts.windows.net/%s/" % tenant.id,
            "iat": now, "nbf": now, "exp": now + life, "ver": "1.0",
            "tid": tenant.id, "oid": det_uuid("oid", tenant.id, client.client_id),
            "sub": det_uuid("oid", tenant.id, client.client_id),
            "idp": "https://sts.windows.net/%s/" % tenant.id,
            "appid": client.client_id, "appidacr": appidacr,
            "roles": client.roles, "uti": det_uuid("uti", self.seed, n),
        }
        header = {"typ": "JWT", "alg": "HS256", "kid": "m365emu"}
        signing_input = b64url(json.dumps(header).encode()) + "." + \
            b64url(json.dumps(claims).encode())
        sig = hmac.new(self.signing_key, signing_input.encode(),
                       hashlib.sha256).digest()
        return signing_input + "." + b64url(sig), life, now

    def check_token(self, auth_header):
        """-> claims, or raises EmuError(401)."""
        deny = EmuError(401, {"Message": "Authorization has been denied for "
                                         "this request."},
                        [("WWW-Authenticate", "Bearer")])
        if not auth_header or not auth_header.startswith("Bearer "):
            raise deny
        tok = auth_header[7:].strip()
        parts = tok.split(".")
        if len(parts) != 3:
            raise deny
        sig = hmac.new(self.signing_key, (parts[0] + "." + parts[1]).encode(),
                       hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(b64url(sig), parts[2]):
                raise deny
            claims = json.loads(b64url_decode(parts[1]))
        except (ValueError, TypeError):
            raise deny
        now = self.now()
        t = self.tenants.get(claims.get("tid", ""))
        if t is None or claims.get("exp", 0) <= now or \
                claims.get("iat", 0) < t.revoke_before or \
                claims.get("aud") != self.resource:
            with self.lock:
                self.stats_misc["rejected_tokens"] += 1
            raise deny
        return claims, t

    # ---- faults

    def take_fault(self, route, tenant_id, ct, content_id=None):
        with self.lock:
            for f in self.faults:
                m = f["match"]
                routes = m.get("routes") or [m.get("route", "any")]
                if "any" not in routes and route not in routes:
                    continue
                if m.get("tenant") and m["tenant"].lower() != (tenant_id or ""):
                    continue
                if m.get("contentType") and canon_ct(m["contentType"]) != ct:
                    continue
                if m.get("contentId") and m["contentId"] != content_id:
                    continue
                if f.get("skip", 0) > 0:
                    f["skip"] -= 1
                    continue
                if "probability" in f and \
                        self.fault_rng.random() >= f["probability"]:
                    continue
                if f.get("count") is not None:
                    if f["count"] <= 0:
                        continue
                    f["count"] -= 1
                f["hits"] = f.get("hits", 0) + 1
                return dict(f)
        return None

    def add_faults(self, specs, replace=False):
        with self.lock:
            if replace:
                self.faults = []
            ids = []
            for spec in specs:
                self.fault_id += 1
                f = dict(spec)
                f["id"] = self.fault_id
                f.setdefault("match", {})
                if "after" in f:
                    f["skip"] = int(f.pop("after"))
                self.faults.append(f)
                ids.append(self.fault_id)
            return ids

    # ---- quota

    def charge(self, t, pub):
        """Per-tenant sliding one-minute window (virtual clock)."""
        now = self.now()
        with self.lock:
            q = t.quota_hits
            while q and q[0] <= now - 60:
                q.popleft()
            if t.quota and len(q) >= t.quota:
                return False
            q.append(now)
            if self.publisher_quota:
                pq = self.publisher_hits.setdefault(pub, collections.deque())
                while pq and pq[0] <= now - 60:
                    pq.popleft()
                if len(pq) >= int(self.publisher_quota):
                    q.pop()
                    return False
                pq.append(now)
        return True

    def throttle_error(self, method, pub, style=None, retry_after=None):
        style = style or self.throttle_style
        body = {"error": {"code": "AF429", "message":
                          "Too many requests. Method=%s, PublisherId=%s"
                          % (method, pub)}}
        if style == "429":
            return EmuError(429, body)
        if style in ("429-retry-after", "429ra"):
            ra = self.retry_after if retry_after is None else retry_after
            return EmuError(429, body, [("Retry-After", str(ra))])
        return EmuError(403, body)

    # ---- served accounting

    def served_report(self, tenant_id, ct):
        t = self.find_tenant(tenant_id) if tenant_id else None
        ids = set()
        records = 0
        blobs = []
        with self.lock:
            cand = list(self.blobs.values())
        for b in cand:
            if b.served == 0:
                continue
            if t is not None and b.tenant is not t:
                continue
            if ct and b.ct != ct:
                continue
            bids = self.blob_ids(b)
            ids.update(bids)
            records += b.served_records
            blobs.append({"contentId": b.content_id, "tenant": b.tenant.id,
                          "contentType": b.ct, "times": b.served,
                          "records": len(bids)})
        return {"ids": sorted(ids), "unique_ids": len(ids),
                "records_served": records, "blobs": blobs}


# --------------------------------------------------------------------------
# HTTP plumbing

class ResetConnection(Exception):
    pass


class EmuHandlerBase(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.emu_verbose:
            sys.stderr.write("m365emu: %s %s\n" % (self.address_string(),
                                                    fmt % args))

    def reset(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True
        raise ResetConnection()

    def send_raw(self, status, body, headers=(), fault=None, ctype=True,
                 before_last=None):
        """Write a full response; fault may alter the body/timing."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response_only(status)
        if ctype:
            for k, v in SERVER_HEADERS:
                self.send_header(k, v)
        for k, v in headers:
            self.send_header(k, v)
        for k, v in TRAILER_HEADERS:
            self.send_header(k, v)
        emu = self.server.emu
        date_t = emu.now() if emu.date_header == "virtual" else time.time()
        self.send_header("Date", fmt_http_date(date_t))
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        action = (fault or {}).get("action")
        if action in ("reset_mid_body", "truncate"):
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.reset()
        if action in ("slow", "drip") and len(body) > 1:
            # all but the last byte trickled out; the last one below (so a
            # blob served this way is counted like any other)
            if action == "slow":
                bps = max(1, int(fault.get("bytes_per_second", 1024)))
                chunk = max(1, bps // 10)
                pause = chunk / float(bps)
                stall_after = None
            else:
                chunk = max(1, int(fault.get("chunk", 1)))
                pause = parse_duration(fault.get("interval", 0.5))
                stall_after = fault.get("stall_after")
            stop = self.server.stop_event
            head, body = body[:-1], body[-1:]
            for i in range(0, len(head), chunk):
                if stall_after is not None and i >= int(stall_after):
                    # no more progress: the client's no-progress limit ends it
                    stop.wait(parse_duration(fault.get("stall_max", "1h")))
                    self.reset()
                self.wfile.write(head[i:i + chunk])
                self.wfile.flush()
                if stop.wait(pause):
                    self.reset()
        if before_last is None or not body:
            self.wfile.write(body)
            self.wfile.flush()
            return
        # Count before the client can have the whole body (so a test that
        # queries the control API right after reading sees it), and undo
        # if the last byte cannot be written.
        self.wfile.write(body[:-1])
        self.wfile.flush()
        before_last(1)
        try:
            self.wfile.write(body[-1:])
            self.wfile.flush()
        except Exception:
            before_last(-1)
            raise

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 16 * 2**20:
            raise EmuError(413, {"Message": "Request too large"})
        return self.rfile.read(n) if n > 0 else b""


class TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, ssl_ctx):
        self.ssl_ctx = ssl_ctx
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        # TLS handshake in the per-connection thread, not in accept().
        if self.ssl_ctx is None:
            return super().finish_request(request, client_address)
        try:
            request.settimeout(30)
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            tls.settimeout(None)
            self.RequestHandlerClass(tls, client_address, self)
        except Exception:       # the client went away: nothing to report
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        if getattr(self, "emu_verbose", False):
            super().handle_error(request, client_address)


# --------------------------------------------------------------------------
# API + token handler

class ApiHandler(EmuHandlerBase):

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        emu = self.server.emu
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        route, status = "unknown", 0
        tenant_id, ct = None, None
        try:
            # Always consume the request body first, so that an early error
            # leaves a clean keep-alive stream.
            try:
                self.req_body = self.read_body()
            except EmuError:
                self.close_connection = True
                raise
            q = {}
            for k, v in urllib.parse.parse_qsl(url.query, keep_blank_values=True):
                q.setdefault(k.lower(), v)
            parts = path.split("/")
            if len(parts) >= 4 and parts[2] == "oauth2" and \
                    path.endswith("/token"):
                route = "token"
                tenant_id = parts[1].lower()
                self.pre_fault(route, tenant_id, None)
                status = self.token(method, parts, self.req_body)
                return
            m = re.match(r"^/api/v1\.0/([^/]+)/activity/feed/(.*)$", path)
            if not m:
                route = "unknown"
                raise EmuError(404, {"Message": "No HTTP resource was found "
                                     "that matches the request URI '%s'."
                                     % self.path})
            url_tid, rest = m.group(1), m.group(2)
            route = self.route_name(rest)
            ct = canon_ct(q.get("contenttype"))
            if route == "blob":
                b = emu.blobs.get(rest[len("audit/"):])
                if b is not None:
                    ct = b.ct
            claims, t = emu.check_token(self.headers.get("Authorization"))
            tenant_id = t.id
            self.pre_fault(route, t.id, ct, rest[len("audit/"):]
                           if route == "blob" else None)
            if not GUID_RE.match(url_tid):
                raise af_error(400, "AF20013", "The tenant ID '%s' in the URL "
                               "is not a valid GUID." % url_tid)
            if url_tid.lower() != t.id:
                with emu.lock:
                    emu.stats_misc["tenant_mismatch"] += 1
                if emu.strict_tenant:
                    raise af_error(403, "AF20010", "The tenant ID '%s' in the "
                                   "URL does not match the tenant ID '%s' in "
                                   "the access token." % (url_tid, t.id))
            if "ActivityFeed.Read" not in (claims.get("roles") or []):
                raise af_error(403, "AF10001", "The permission set (%s) sent "
                               "in the request does not include the expected "
                               "permission 'ActivityFeed.Read'."
                               % ",".join(claims.get("roles") or []))
            pub = q.get("publisheridentifier")
            if not pub:
                with emu.lock:
                    emu.stats_misc["missing_publisher"] += 1
                    emu.stats_misc["missing_publisher:" + route] += 1
                pub = "00000000-0000-0000-0000-000000000000"
            if not emu.charge(t, pub):
                with emu.lock:
                    emu.stats_misc["throttled_quota"] += 1
                raise emu.throttle_error(self.method_name(route), pub)
            status = self.api(method, route, rest, q, t, claims, url_tid, pub)
        except EmuError as e:
            status = e.status
            try:
                self.send_raw(e.status, e.body, e.headers)
            except (OSError, ssl.SSLError):
                self.close_connection = True
        except ResetConnection:
            status = "reset"
        except (OSError, ssl.SSLError):
            status = "io-error"
            self.close_connection = True
        finally:
            with emu.lock:
                emu.stats["%s %s %s" % (method, route, status)] += 1
                if tenant_id:
                    emu.stats["tenant %s %s %s" % (tenant_id, route, status)] += 1

    @staticmethod
    def route_name(rest):
        if rest.startswith("audit/"):
            return "blob"
        if rest.startswith("subscriptions/"):
            return rest[len("subscriptions/"):] or "unknown"
        if rest == "resources/dlpSensitiveTypes":
            return "dlpSensitiveTypes"
        return "unknown"

    @staticmethod
    def method_name(route):
        return {"blob": "GetBlob", "content": "ListContent",
                "start": "StartSubscription", "stop": "StopSubscription",
                "list": "ListSubscriptions",
                "notifications": "ListNotifications"}.get(route, route)

    def pre_fault(self, route, tenant_id, ct, content_id=None):
        """Latency and injected faults applied before normal handling."""
        emu = self.server.emu
        stop = self.server.stop_event
        if emu.latency > 0 and stop.wait(emu.latency):
            self.reset()
        f = emu.take_fault(route, tenant_id, ct, content_id)
        self.fault = f
        if f is None:
            return
        action = f.get("action", "status")
        if "delay" in f:
            if stop.wait(parse_duration(f["delay"])):
                self.reset()
        if action == "delay":
            self.fault = None
            return
        if action == "reset":
            self.reset()
        if action == "stall":
            stop.wait(parse_duration(f.get("stall_max", "1h")))
            self.reset()
        if action in ("throttle", "throttle403", "throttle429"):
            style = {"throttle403": "403", "throttle429": "429"}.get(action)
            if action == "throttle429" and "retry_after" in f:
                style = "429-retry-after"
            raise emu.throttle_error(self.method_name(route),
                                     "00000000-0000-0000-0000-000000000000",
                                     style or f.get("style"),
                                     f.get("retry_after"))
        if action == "expire_token":
            raise EmuError(401, {"Message": "Authorization has been denied "
                                 "for this request."},
                           [("WWW-Authenticate", "Bearer")])
        if action == "token_error":
            kind = f.get("kind", "temporarily_unavailable")
            if kind not in TOKEN_ERRORS:
                raise EmuError(500, {"error": "server_error",
                                     "error_description": "m365emu: unknown "
                                     "token_error kind %s" % kind})
            st, error, code, desc = TOKEN_ERRORS[kind]
            self.token_error(st, error, code, desc)
        if action == "not_found":
            raise af_error(404, "AF20050", "The specified content (%s) does "
                           "not exist." % (content_id or ""))
        if action == "status":
            st = int(f.get("status", 500))
            hdrs = []
            if "retry_after" in f:
                hdrs.append(("Retry-After", str(f["retry_after"])))
            if "body" in f:
                raise EmuError(st, f["body"], hdrs)
            code = f.get("code", {500: "AF50000", 503: "AF50000",
                                  408: "AF50000"}.get(st, "AF50000"))
            raise EmuError(st, {"error": {"code": code, "message":
                                          f.get("message", "An internal error "
                                                "occurred. Retry the request.")}},
                           hdrs)
        # body-altering actions (reset_mid_body, truncate, slow, malformed)
        # are applied when the response is written.

    def respond(self, status, body, headers=(), before_last=None):
        f = getattr(self, "fault", None)
        if f and f.get("action") == "malformed" and isinstance(body, bytes):
            body = body[:max(1, len(body) - 7)] + b',{"Id":'
            f = None
            before_last = None
        self.send_raw(status, body, headers, fault=f, before_last=before_last)
        return status

    # ---- token endpoint

    def token_error(self, status, error, code, desc):
        emu = self.server.emu
        ts = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(emu.now()))
        trace = str(uuid.uuid4())
        corr = str(uuid.uuid4())
        body = {"error": error,
                "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\n"
                "Correlation ID: %s\r\nTimestamp: %s" % (code, desc, trace,
                                                          corr, ts),
                "error_codes": [code], "timestamp": ts, "trace_id": trace,
                "correlation_id": corr,
                "error_uri": "https://login.microsoftonline.com/error?code=%d"
                % code}
        raise EmuError(status, body)

    def token(self, method, parts, raw):
        emu = self.server.emu
        if method != "POST":
            raise EmuError(405, {"error": "invalid_request"})
        v2 = len(parts) == 5 and parts[3] == "v2.0"
        if not (v2 or len(parts) == 4):
            raise EmuError(404, {"error": "not_found"})
        form = {}
        for k, v in urllib.parse.parse_qsl(raw.decode("utf-8", "replace"),
                                           keep_blank_values=True):
            form.setdefault(k, v)
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Basic "):
            try:
                u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                form.setdefault("client_id", urllib.parse.unquote(u))
                form.setdefault("client_secret", urllib.parse.unquote(p))
            except (ValueError, UnicodeDecodeError):
                pass
        t = emu.find_tenant(parts[1])
        if t is None:
            self.token_error(400, "invalid_request", 90002, "Tenant '%s' not "
                             "found. Check to make sure you have the correct "
                             "tenant ID." % parts[1])
        if form.get("grant_type") != "client_credentials":
            if not form.get("grant_type"):
                self.token_error(400, "invalid_request", 900144, "The request "
                                 "body must contain the following parameter: "
                                 "'grant_type'.")
            self.token_error(400, "unsupported_grant_type", 70003, "The app "
                             "requested an unsupported grant type '%s'."
                             % form.get("grant_type"))
        if not form.get("client_id"):
            self.token_error(400, "invalid_request", 900144, "The request body "
                             "must contain the following parameter: "
                             "'client_id'.")
        if v2:
            if "resource" in form:
                self.token_error(400, "invalid_request", 901002, "The "
                                 "'resource' request parameter is not "
                                 "supported.")
            scope = form.get("scope")
            if not scope:
                self.token_error(400, "invalid_request", 900144, "The request "
                                 "body must contain the following parameter: "
                                 "'scope'.")
            if len(scope.split()) > 1:
                self.token_error(400, "invalid_scope", 700022, "The provided "
                                 "value for the input parameter scope is not "
                                 "valid because it contains more than one "
                                 "resource.")
            if scope.rstrip("/") in (emu.resource + "/.default",) or \
                    scope == emu.resource + "//.default":
                pass
            else:
                self.token_error(400, "invalid_scope", 70011, "The provided "
                                 "request must include a 'scope' input "
                                 "parameter. The provided value for the input "
                                 "parameter 'scope' is not valid. The scope "
                                 "%s is not valid." % scope)
        else:
            res = form.get("resource")
            if not res:
                self.token_error(400, "invalid_request", 900144, "The request "
                                 "body must contain the following parameter: "
                                 "'resource'.")
            if res.rstrip("/") != emu.resource:
                self.token_error(400, "invalid_resource", 500011, "The "
                                 "resource principal named %s was not found in "
                                 "the tenant named %s." % (res, t.id))
        client = emu.find_client(t, form.get("client_id"))
        if client is None:
            self.token_error(400, "unauthorized_client", 700016, "Application "
                             "with identifier '%s' was not found in the "
                             "directory '%s'." % (form.get("client_id"), t.id))
        if client.disabled:
            self.token_error(400, "unauthorized_client", 7000112, "Application "
                             "'%s' is disabled." % client.client_id)
        if form.get("client_assertion") or form.get("client_assertion_type"):
            if form.get("client_assertion_type") != JWT_BEARER:
                self.token_error(400, "invalid_request", 7000218, "The request "
                                 "body must contain the following parameter: "
                                 "'client_assertion' or 'client_secret'.")
            self.check_assertion(t, client, form.get("client_assertion", ""),
                                 parts, v2)
            appidacr = "2"
        elif "client_secret" in form:
            if form["client_secret"] not in client.secrets:
                self.token_error(401, "invalid_client", 7000215, "Invalid "
                                 "client secret provided. Ensure the secret "
                                 "being sent in the request is the client "
                                 "secret value, not the client secret ID, for "
                                 "a secret added to app '%s'."
                                 % client.client_id)
            if client.secret_expired:
                self.token_error(401, "invalid_client", 7000222, "The provided "
                                 "client secret keys for app '%s' are expired."
                                 % client.client_id)
            appidacr = "1"
        else:
            self.token_error(401, "invalid_client", 7000218, "The request body "
                             "must contain the following parameter: "
                             "'client_assertion' or 'client_secret'.")
        tok, life, now = emu.issue_token(t, client, appidacr)
        if v2:
            body = {"token_type": "Bearer", "expires_in": life,
                    "ext_expires_in": life, "access_token": tok}
        else:
            body = {"token_type": "Bearer", "expires_in": str(life),
                    "ext_expires_in": str(life), "expires_on": str(now + life),
                    "not_before": str(now), "resource": emu.resource,
                    "access_token": tok}
        return self.respond(200, json.dumps(body).encode())

    def check_assertion(self, t, client, jwt, parts, v2):
        emu = self.server.emu

        def fail(code, desc, error="invalid_client", status=401):
            with emu.lock:
                emu.stats_misc["assertion_rejected"] += 1
                emu.stats_misc["assertion_rejected:%d" % code] += 1
            self.token_error(status, error, code, desc)

        segs = jwt.split(".")
        if len(segs) != 3:
            fail(50027, "JWT token is invalid or malformed.", "invalid_request",
                 400)
        try:
            header = json.loads(b64url_decode(segs[0]))
            claims = json.loads(b64url_decode(segs[1]))
            sig = b64url_decode(segs[2])
        except (ValueError, TypeError):
            fail(50027, "JWT token is invalid or malformed.", "invalid_request",
                 400)
        if not isinstance(header, dict) or not isinstance(claims, dict):
            fail(50027, "JWT token is invalid or malformed.", "invalid_request",
                 400)
        alg = header.get("alg")
        if alg not in ("RS256", "PS256"):
            fail(5002738, "Invalid JWT token. '%s' is not a supported signature "
                 "algorithm." % alg)
        cert = None
        for c in client.certs:
            if header.get("x5t#S256") and header["x5t#S256"] == c.x5t256:
                cert = c
            elif header.get("x5t") and header["x5t"] == c.x5t:
                cert = c
        if cert is None:
            fail(700027, "Client assertion failed signature validation. "
                 "[Reason - The key was not found., Thumbprint of key used by "
                 "client: '%s']" % (header.get("x5t#S256") or header.get("x5t")))
        signed = (segs[0] + "." + segs[1]).encode("ascii")
        if alg == "RS256":
            ok = rsa_verify_pkcs1v15_sha256(cert.n, cert.e, signed, sig)
        else:
            ok = rsa_verify_pss_sha256(cert.n, cert.e, signed, sig, 32)
        if not ok:
            fail(700027, "Client assertion failed signature validation.")
        host = self.headers.get("Host") or ""
        tail = "/oauth2/v2.0/token" if v2 else "/oauth2/token"
        accepted = set()
        names = {parts[1].lower(), t.id}
        if t.domain:
            names.add(t.domain)
        for name in names:
            for tl in ("/oauth2/v2.0/token", "/oauth2/token"):
                for h in emu.login_hosts:
                    accepted.add("https://%s/%s%s" % (h, name, tl))
            accepted.add("https://%s/%s%s" % (host, name, tail))
        aud = claims.get("aud")
        if not isinstance(aud, str) or aud.lower() not in \
                {a.lower() for a in accepted}:
            fail(700212, "No matching federated identity record found for "
                 "presented assertion audience '%s'." % aud)
        if claims.get("iss", "").lower() != client.client_id or \
                claims.get("sub", "").lower() != client.client_id:
            fail(700021, "Client assertion application identifier doesn't match "
                 "'client_id' parameter.")
        now = emu.now()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            fail(700024, "Client assertion is not within its valid time range "
                 "(exp missing or not a number).")
        if exp + emu.assertion_skew < now:
            fail(700024, "Client assertion is not within its valid time range. "
                 "Current time: %s, assertion valid to: %s." % (
                     fmt_7(now), fmt_7(exp)))
        if nbf is not None:
            if not isinstance(nbf, (int, float)) or nbf - emu.assertion_skew > now:
                fail(700024, "Client assertion is not within its valid time "
                     "range. Current time: %s, assertion valid from: %s."
                     % (fmt_7(now), nbf))
        jti = claims.get("jti")
        if not jti or not isinstance(jti, str):
            fail(50013, "Assertion failed signature validation. [Reason - jti "
                 "claim missing.]")
        key = client.client_id + "|" + jti
        with emu.lock:
            for k in [k for k, v in emu.jti_seen.items() if v < now - 2 * DAY]:
                del emu.jti_seen[k]
            if key in emu.jti_seen:
                replay = True
            else:
                replay = False
                emu.jti_seen[key] = max(float(exp), now)
        if replay:
            fail(50013, "Assertion failed signature validation. [Reason - The "
                 "assertion has already been used (jti replay).]")
        with emu.lock:
            emu.stats_misc["assertion_ok:" + alg] += 1
            emu.stats_misc["assertion_ok:" + ("x5t#S256" if header.get(
                "x5t#S256") else "x5t")] += 1

    # ---- management API

    def api(self, method, route, rest, q, t, claims, url_tid, pub):
        emu = self.server.emu
        expect = {"start": "POST", "stop": "POST", "list": "GET",
                  "content": "GET", "notifications": "GET", "blob": "GET",
                  "dlpSensitiveTypes": "GET"}
        if route not in expect:
            raise EmuError(404, {"Message": "No HTTP resource was found that "
                                 "matches the request URI '%s'." % self.path})
        if method != expect[route]:
            raise EmuError(405, {"Message": "The requested resource does not "
                                 "support http method '%s'." % method})
        body = self.req_body
        host = self.headers.get("Host") or "127.0.0.1"
        root = "https://%s/api/v1.0/%s/activity/feed" % (host, t.id)
        if route == "dlpSensitiveTypes":
            lang = self.headers.get("Accept-Language")
            if lang is not None:
                if "," in lang:
                    raise af_error(400, "AF20053", "Only one language may be "
                                   "specified in the Accept-Language header.")
                if not re.fullmatch(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*", lang):
                    raise af_error(400, "AF20054", "Invalid syntax for the "
                                   "Accept-Language header: %s." % lang)
            return self.respond(200, json.dumps(DLP_TYPES).encode())
        if route == "list":
            if not t.audit_enabled:
                raise self.tenant_missing("ListSubscriptions", t, claims, pub,
                                          "Audit.General")
            out = []
            with emu.lock:
                for ct in CONTENT_TYPES:
                    s = t.streams.get(ct)
                    if s is not None and s.status is not None:
                        out.append({"contentType": ct, "status": s.status,
                                    "webhook": s.webhook})
            return self.respond(200, json.dumps(out, separators=(',', ':')).encode())
        if route == "blob":
            return self.get_blob(rest[len("audit/"):], t)
        raw_ct = q.get("contenttype")
        if raw_ct is None:
            raise af_error(400, "AF20001", "Missing parameter: contentType.")
        ct = canon_ct(raw_ct)
        if ct is None:
            raise af_error(400, "AF20020", "The specified content type is not "
                           "valid.")
        if not t.audit_enabled:
            raise self.tenant_missing(self.method_name(route), t, claims, pub, ct)
        now = emu.now()
        s = t.stream(ct)
        if route == "start":
            return self.start(s, body, now, claims)
        if route == "stop":
            with emu.lock:
                if s.status is None:
                    raise af_error(400, "AF20022", "No subscription found for "
                                   "the specified content type.")
                if s.status == "enabled":
                    s.status = "disabled"
                    s.intervals[-1][1] = now
            self.send_raw(200, b"", ctype=False)
            return 200
        # content / notifications
        with emu.lock:
            if s.status is None:
                raise af_error(400, "AF20022", "No subscription found for the "
                               "specified content type.")
            if s.status != "enabled":
                raise af_error(400, "AF20023", "The subscription was disabled "
                               "by a tenant admin.")
        st_raw, en_raw = q.get("starttime"), q.get("endtime")
        if (st_raw is None) != (en_raw is None) or st_raw == "" or en_raw == "":
            raise self.time_error(st_raw, en_raw)
        if st_raw is None:
            start, end = now - emu.max_window, now
        else:
            start, end = parse_api_time(st_raw), parse_api_time(en_raw)
            if start is None or end is None:
                raise af_error(400, "AF20002", "Invalid parameter type: %s. "
                               "Expected type: datetime." %
                               ("startTime" if start is None else "endTime"))
            if end - start > emu.max_window or start >= end or \
                    start < now - emu.retention - emu.start_grace:
                with emu.lock:
                    emu.stats_misc["time_errors"] += 1
                raise self.time_error(fmt_7(start), fmt_7(end))
        if route == "notifications":
            with emu.lock:
                out = [n for n in s.notifications
                       if start <= parse_api_time(n["notificationSent"]) < end]
            return self.respond(200, json.dumps(out[:1000]).encode())
        return self.list_content(s, t, start, end, q, root, host, url_tid, now)

    def time_error(self, st, en):
        emu = self.server.emu
        return af_error(400, emu.time_error_code,
                        "Start time and end time must both be specified (or "
                        "both omitted) and must be less than or equal to 24 "
                        "hours apart, with the start time prior to end time "
                        "and start time no more than 7 days in the past. "
                        "StartTime:%s, EndTime:%s" % (st, en))

    def tenant_missing(self, op, t, claims, pub, ct):
        corr = str(uuid.uuid4())
        appid = claims.get("appid", "")
        code = ("%s [CorrId=%s][TenantId=%s,ContentType=%s,ApplicationId=%s,"
                "PublisherId=%s][AppId" % (op, corr, t.id, ct, appid, pub))
        msg = ("%s] failed. Exception: Microsoft.Office.Compliance.Audit."
               "DataServiceException: Tenant %s does not exist.\r\n   at "
               "Microsoft.Office.Compliance.Audit.API.AzureManager."
               "<GetSubscriptionTableClientForTenantAsync>d__52.MoveNext() in "
               "d:\\dbs\\sh\\nibr\\AzureManager.cs:line 2113\r\n" % (appid[1:], t.id))
        return EmuError(400, {"error": {"code": code, "message": msg}})

    def start(self, s, body, now, claims):
        emu = self.server.emu
        webhook = None
        if body.strip() not in (b"", b'""', b"{}", b"null"):
            try:
                req = json.loads(body)
            except ValueError:
                raise af_error(400, "AF20002", "Invalid parameter type: body. "
                               "Expected type: json.")
            wh = req.get("webhook") if isinstance(req, dict) else None
            if isinstance(wh, dict):
                addr = wh.get("address") or ""
                if not addr.lower().startswith("https://"):
                    raise af_error(400, "AF20021", "The webhook endpoint {%s} "
                                   "could not be validated. The address must "
                                   "begin with HTTPS." % addr)
                if not self.validate_webhook(addr, wh.get("authId")):
                    raise af_error(400, "AF20021", "The webhook endpoint {%s} "
                                   "could not be validated. The endpoint did "
                                   "not return HTTP 200." % addr)
                webhook = {"status": "enabled", "address": addr,
                           "authId": wh.get("authId"),
                           "expiration": wh.get("expiration") or None}
        with emu.lock:
            if s.last_start is not None and now - s.last_start < emu.start_throttle:
                emu.stats_misc["start_within_throttle"] += 1
            if s.status == "enabled" and webhook == s.webhook:
                emu.stats_misc["start_af20024"] += 1
                raise af_error(400, "AF20024", "The subscription is already "
                               "enabled. No property change.")
            if s.last_start is not None and \
                    now - s.last_start < emu.start_throttle:
                raise emu.throttle_error("StartSubscription", "")
            s.last_start = now
            if s.status != "enabled":
                s.intervals.append([now, None])
                if s.first_start is None:
                    s.first_start = now
            s.status = "enabled"
            s.webhook = webhook
            s.webhook_app = claims.get("appid")
            if webhook:
                # content made before the webhook was set is not notified
                s.notified = {b.content_id for b in s.blobs}
                emu.webhook_streams.add(s)
            else:
                emu.webhook_streams.discard(s)
        return self.respond(200, json.dumps({"contentType": s.ct,
                                             "status": "enabled",
                                             "webhook": webhook}).encode())

    def validate_webhook(self, addr, auth_id):
        code = str(uuid.uuid4())
        return self.server.emu.post_json(addr, {"validationCode": code}, {
            "Webhook-ValidationCode": code, "Webhook-AuthID": auth_id})

    def list_content(self, s, t, start, end, q, root, host, url_tid, now):
        emu = self.server.emu
        page_size = int(t.page_size or emu.page_size)
        token = q.get("nextpage")
        cursor = None
        if token is not None:
            mt = re.fullmatch(r"(\d{23})\$(\d{23})\$emu(\d{1,12})", token)
            if not mt:
                raise af_error(400, "AF20031", "Invalid nextPage input: %s."
                               % token)
            cursor = (int(mt.group(1)), int(mt.group(3)))
        with emu.lock:
            emu._generate_due(s, now)
            if not s.sorted:
                s.blobs.sort(key=lambda b: (b.created, b.seq))
                s.sorted = True
            gate = (s.first_start or 0) + t.first_data_delay
            if now < gate:
                items = []
            else:
                sms, ems = int(round(start * 1000)), int(round(end * 1000))
                items = [b for b in s.blobs
                         if sms <= b.cms < ems and b.available <= now
                         and b.created < now + 1 and s.enabled_at(b.created)
                         and b.expiration > now]
            if cursor is not None:
                items = [b for b in items
                         if (int(digits23(b.created)), b.seq) >= cursor]
            page, more = items[:page_size], items[page_size:]
            out = [{"contentType": b.ct, "contentId": b.content_id,
                    "contentUri": root + "/audit/" + b.content_id,
                    "contentCreated": fmt_created(b.created),
                    "contentExpiration": fmt_created(b.expiration)}
                   for b in page]
            emu.stats_misc["blobs_listed"] += len(out)
        headers = []
        f = getattr(self, "fault", None) or {}
        repeat = f.get("action") == "nextpage_repeat"
        if more or repeat:
            if repeat:
                # the NextPageUri of this page is this page again (a loop)
                tok = token
            else:
                nb = more[0]
                tok = "%s$%s$emu%d" % (digits23(nb.created), digits23(start),
                                       nb.seq)
            uri = ("https://%s/api/v1.0/%s/activity/feed/subscriptions/content?"
                   "contenttype=%s&starttime=%s&endtime=%s"
                   % (host, url_tid, s.ct, fmt_7(start), fmt_7(end)))
            if tok is not None:
                uri += "&nextpage=" + tok
            if f.get("action") == "nextpage_long":
                # a valid URI of `length` bytes (a filler parameter)
                want = int(f.get("length", 5000))
                uri += "&filler=" + "x" * max(0, want - len(uri) - 8)
            headers.append((emu.nextpage_header, uri))
        return self.respond(200, json.dumps(out, separators=(',', ':')).encode(), headers)

    def get_blob(self, cid, t):
        emu = self.server.emu
        if not CONTENT_ID_RE.match(cid):
            raise af_error(400, "AF20052", "Content ID %s in the URL is invalid."
                           % cid)
        now = emu.now()
        b = emu.blobs.get(cid)
        s = t.streams.get(b.ct) if b is not None else None
        if b is None or b.tenant is not t or b.available > now or \
                s is None or not s.enabled_at(b.created):
            raise af_error(404, "AF20050", "The specified content (%s) does not "
                           "exist." % cid)
        if s.status != "enabled":
            raise af_error(400, "AF20023", "The subscription was disabled by "
                           "a tenant admin.")
        if b.expiration <= now:
            raise af_error(emu.blob_expired_status, "AF20051", "Content "
                           "requested with the key %s "
                           "has already expired. Content older than 7 days "
                           "cannot be retrieved." % cid)
        f = getattr(self, "fault", None)
        if f and f.get("action") in ("gzip_bomb", "oversize"):
            return self.send_big(b, f)
        body = emu.blob_body(b)
        n = len(emu.blob_ids(b)) if (b.records is not None or b.dups) else b.n

        def served(sign):
            with emu.lock:
                b.served += sign
                b.served_records += sign * n
                emu.stats_misc["blobs_served"] += sign
                emu.stats_misc["records_served"] += sign * n

        # Counted only when the whole body was written (see send_raw).
        return self.respond(200, body, before_last=served)


    def send_big(self, b, f):
        """A blob whose body is `size` bytes once decompressed: its records,
        then blanks up to size. gzip_bomb sends it gzip-compressed
        (Content-Encoding: gzip, about 1000:1), oversize as it is. Never
        counted as served."""
        import zlib
        emu = self.server.emu
        size = int(parse_duration(f.get("size", 64 << 20)))
        head = emu.blob_body(b)[:-1]
        pad = max(0, size - len(head) - 1)
        hdrs = [("Content-Type", "application/json; charset=utf-8")]
        if f["action"] == "gzip_bomb":
            z = zlib.compressobj(9, zlib.DEFLATED, 31)
            parts = [z.compress(head)]
            blank = b" " * (1 << 20)
            left = pad
            while left > 0:
                parts.append(z.compress(blank[:min(left, len(blank))]))
                left -= min(left, len(blank))
            parts.append(z.compress(b"]"))
            parts.append(z.flush())
            body = b"".join(parts)
            hdrs.append(("Content-Encoding", "gzip"))
            self.send_raw(200, body, hdrs, ctype=False)
            return 200
        # oversize: streamed, never held in memory
        self.send_response_only(200)
        for k, v in hdrs + TRAILER_HEADERS:
            self.send_header(k, v)
        self.send_header("Date", fmt_http_date(emu.now()))
        self.send_header("Content-Length", str(len(head) + pad + 1))
        self.end_headers()
        self.wfile.write(head)
        blank = b" " * (1 << 20)
        left = pad
        while left > 0:
            self.wfile.write(blank[:min(left, len(blank))])
            left -= min(left, len(blank))
        self.wfile.write(b"]")
        self.wfile.flush()
        return 200


# --------------------------------------------------------------------------
# control API (plain HTTP, loopback)

class ControlHandler(EmuHandlerBase):

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        emu = self.server.emu
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        try:
            body = self.read_body() if method == "POST" else b""
            req = json.loads(body) if body.strip() else {}
            out = self.control(method, url.path, q, req)
            self.send_raw(200, json.dumps(out, separators=(',', ':')).encode())
        except EmuError as e:
            self.send_raw(e.status, e.body)
        except (ValueError, KeyError, TypeError) as e:
            self.send_raw(400, {"error": "%s: %s" % (type(e).__name__, e)})
        except (OSError, ResetConnection):
            self.close_connection = True

    def tenant(self, name):
        t = self.server.emu.find_tenant(name)
        if t is None:
            raise EmuError(404, {"error": "unknown tenant %s" % name})
        return t

    def control(self, method, path, q, req):
        emu = self.server.emu
        if path == "/_control/health":
            return {"ok": True, "api_port": self.server.api_port,
                    "control_port": self.server.server_address[1],
                    "now": fmt_7(emu.now()), "tenants": len(emu.tenants)}
        if path == "/_control/clock":
            if method == "POST":
                raise EmuError(405, {"error": "use /_control/advance-clock"})
            return {"now": fmt_7(emu.now()), "epoch": emu.now(),
                    "offset": emu.offset}
        if path == "/_control/advance-clock" and method == "POST":
            if "to" in req:
                target = parse_api_time(req["to"])
                if target is None:
                    raise ValueError("bad time %r" % req["to"])
                emu.advance(target - emu.now())
            else:
                emu.advance(parse_duration(req.get("seconds", req.get("by", 0))))
            return {"now": fmt_7(emu.now()), "epoch": emu.now(),
                    "offset": emu.offset}
        if path == "/_control/served":
            ct = q.get("contentType") or q.get("contenttype")
            if ct and canon_ct(ct) is None:
                raise ValueError("unknown content type %s" % ct)
            if q.get("tenant"):
                self.tenant(q["tenant"])
            rep = emu.served_report(q.get("tenant"), canon_ct(ct) if ct else None)
            if q.get("ids") == "0":
                del rep["ids"]
                del rep["blobs"]
            return rep
        if path == "/_control/content":
            t = self.tenant(q["tenant"])
            ct = canon_ct(q.get("contentType", ""))
            out = []
            with emu.lock:
                blobs = [b for s in t.streams.values() for b in s.blobs
                         if ct is None or b.ct == ct]
            for b in sorted(blobs, key=lambda b: (b.created, b.seq)):
                ids = emu.blob_ids(b)
                out.append({"contentId": b.content_id, "contentType": b.ct,
                            "created": fmt_created(b.created),
                            "available": fmt_created(b.available),
                            "records": len(ids), "ids": ids,
                            "served": b.served})
            return {"blobs": out}
        if path == "/_control/stats":
            with emu.lock:
                return {"requests": dict(emu.stats), "counters":
                        dict(emu.stats_misc)}
        if path == "/_control/reset-stats" and method == "POST":
            with emu.lock:
                emu.stats.clear()
                emu.stats_misc.clear()
            return {"ok": True}
        if path == "/_control/faults":
            if method == "DELETE":
                with emu.lock:
                    if q.get("id"):
                        ids = {int(i) for i in q["id"].split(",")}
                        emu.faults = [f for f in emu.faults if f["id"] not in ids]
                    else:
                        emu.faults = []
                return {"ok": True}
            if method == "POST":
                specs = req.get("faults", [req] if "action" in req else [])
                return {"ids": emu.add_faults(specs, bool(req.get("replace")))}
            with emu.lock:
                return {"faults": [dict(f) for f in emu.faults]}
        if path == "/_control/publish" and method == "POST":
            t = self.tenant(req["tenant"])
            ct = canon_ct(req["contentType"])
            if ct is None:
                raise ValueError("unknown content type")
            blobs = emu.publish(t, ct, req)
            return {"blobs": [{"contentId": b.content_id,
                               "created": fmt_created(b.created),
                               "ids": emu.blob_ids(b)} for b in blobs]}
        if path == "/_control/expire-tokens" and method == "POST":
            now = emu.now() + 1
            with emu.lock:
                for t in ([self.tenant(req["tenant"])] if req.get("tenant")
                          else emu.tenants.values()):
                    t.revoke_before = now
            return {"ok": True}
        if path == "/_control/config" and method == "POST":
            with emu.lock:
                for k in ("page_size", "token_lifetime", "throttle_style",
                          "retry_after", "nextpage_header", "strict_tenant",
                          "time_error_code", "date_header",
                          "blob_expired_status"):
                    if k in req:
                        setattr(emu, k, req[k])
                if "latency" in req:
                    emu.latency = parse_duration(req["latency"])
                if "start_throttle" in req:
                    emu.start_throttle = parse_duration(req["start_throttle"])
                if "start_grace" in req:
                    emu.start_grace = parse_duration(req["start_grace"])
                for tc in req.get("tenants", []):
                    t = self.tenant(tc["id"])
                    if "quota_per_minute" in tc:
                        t.quota = int(tc["quota_per_minute"])
                        t.quota_hits.clear()
                    if "audit_enabled" in tc:
                        t.audit_enabled = bool(tc["audit_enabled"])
                    if "page_size" in tc:
                        t.page_size = tc["page_size"]
                    if "first_data_delay" in tc:
                        t.first_data_delay = parse_duration(tc["first_data_delay"])
            return {"ok": True}
        if path == "/_control/subscription" and method == "POST":
            t = self.tenant(req["tenant"])
            s = t.stream(canon_ct(req["contentType"]))
            now = emu.now()
            with emu.lock:
                st = req.get("status")
                if st == "disabled" and s.status == "enabled":
                    s.intervals[-1][1] = now
                elif st == "enabled" and s.status != "enabled":
                    s.intervals.append([now, None])
                    if s.first_start is None:
                        s.first_start = now
                if "last_start" in req:
                    s.last_start = parse_time_spec(req["last_start"], now)
                s.status = st if st else s.status
            return {"contentType": s.ct, "status": s.status}
        if path == "/_control/tenants":
            return {"tenants": [{"id": t.id, "domain": t.domain,
                                 "quota_per_minute": t.quota}
                                for t in list(emu.tenants.values())[
                                    int(q.get("offset", 0)):
                                    int(q.get("offset", 0)) + int(q.get("limit", 100))]]}
        raise EmuError(404, {"error": "no such control endpoint %s %s"
                             % (method, path)})


# --------------------------------------------------------------------------
# server lifecycle

class Server:
    def __init__(self, emu, certfile, keyfile, host="127.0.0.1", port=0,
                 control_port=0, verbose=False):
        self.emu = emu
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(certfile, keyfile)
        self.stop_event = threading.Event()
        self.api = TLSServer((host, port), ApiHandler, ctx)
        self.ctl = TLSServer((host, control_port), ControlHandler, None)
        for srv in (self.api, self.ctl):
            srv.emu = emu
            srv.emu_verbose = verbose
            srv.stop_event = self.stop_event
            srv.api_port = self.api.server_address[1]
        self.threads = []

    @property
    def api_port(self):
        return self.api.server_address[1]

    @property
    def control_port(self):
        return self.ctl.server_address[1]

    def start(self):
        for srv in (self.api, self.ctl):
            th = threading.Thread(target=srv.serve_forever,
                                  kwargs={"poll_interval": 0.2}, daemon=True)
            th.start()
            self.threads.append(th)
        th = threading.Thread(target=self.notifier, daemon=True)
        th.start()
        self.threads.append(th)

    def notifier(self):
        host = "%s:%d" % (self.api.server_address[0], self.api_port)
        while not self.stop_event.wait(0.2):
            if self.emu.webhook_streams:
                try:
                    self.emu.notify_once(host)
                except Exception as e:   # keep notifying; report it
                    sys.stderr.write("m365emu: notifier: %r\n" % (e,))

    def stop(self):
        self.stop_event.set()
        for srv in (self.api, self.ctl):
            srv.shutdown()
            srv.server_close()


def load_scenario(path):
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml  # optional, not in the standard library
        except ImportError:
            raise SystemExit("m365emu: YAML scenarios need PyYAML; use JSON")
        return yaml.safe_load(text) or {}
    return json.loads(text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", "-s", help="scenario file (JSON, or YAML "
                    "when PyYAML is installed)")
    ap.add_argument("--cert", required=True, help="server certificate (PEM)")
    ap.add_argument("--key", required=True, help="server private key (PEM)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="HTTPS port (0=any)")
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--pregenerate", action="store_true",
                    help="serialize every blob body at start-up")
    ap.add_argument("--ready-file", help="write the ready JSON line here too")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args(argv)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        ap.error("loopback only")
    sc = load_scenario(args.scenario) if args.scenario else {
        "tenants": [], "clients": []}
    base = os.path.dirname(os.path.abspath(args.scenario)) if args.scenario \
        else os.getcwd()
    emu = Emulator(sc, base, args.seed)
    pregen = sc.get("pregenerate", "background")
    if args.pregenerate or pregen is True or pregen == "startup":
        emu.pregenerate()
    srv = Server(emu, args.cert, args.key, args.host, args.port,
                 args.control_port, args.verbose)
    srv.start()
    if pregen == "background" and not args.pregenerate:
        threading.Thread(target=emu.pregenerate, args=(srv.stop_event,),
                         daemon=True).start()
    ready = json.dumps({"ready": True, "api_port": srv.api_port,
                        "control_port": srv.control_port, "pid": os.getpid(),
                        "tenants": len(emu.tenants), "blobs": len(emu.blobs)})
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(ready + "\n")
        os.replace(tmp, args.ready_file)
    sys.stdout.write(ready + "\n")
    sys.stdout.flush()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(1.0):
        pass
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
