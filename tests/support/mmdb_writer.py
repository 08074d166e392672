#!/usr/bin/env python3
"""A tiny MaxMind DB (MMDB 2.0) writer for tests: mmdb_writer.py OUT.mmdb

Writes the test geolocation database (TEST_NETWORKS below: documentation
and a few corpus addresses placed in distant cities) in the GeoIP2-City
layout that normalizers/geoip.c reads. GeoLite itself cannot be
downloaded; the format is public (maxmind.github.io/MaxMind-DB/):
a binary search tree over the address bits (IPv6; IPv4 networks sit at
::a.b.c.d/96+n), 16 zero bytes, the data section, then the metadata
marker and map. Records are 24 bits; data values use the MMDB encoding
(maps, UTF-8 strings, doubles, unsigned integers, arrays).
Python 3 standard library only; importable (write_mmdb) for other tests.
"""
import ipaddress
import struct
import sys

METADATA_MARKER = b'\xab\xcd\xefMaxMind.com'


def city(name, country_iso, country, continent_code, continent, lat, lon,
         region_iso='', region=''):
    rec = {
        'city': {'names': {'en': name}},
        'continent': {'code': continent_code, 'names': {'en': continent}},
        'country': {'iso_code': country_iso, 'names': {'en': country}},
        'location': {'latitude': float(lat), 'longitude': float(lon),
                     'accuracy_radius': ('uint16', 20)},
    }
    if region_iso:
        rec['subdivisions'] = [{'iso_code': region_iso,
                                'names': {'en': region}}]
    return rec


PARIS = city('Paris', 'FR', 'France', 'EU', 'Europe', 48.8566, 2.3522,
             'IDF', 'Ile-de-France')
SYDNEY = city('Sydney', 'AU', 'Australia', 'OC', 'Oceania', -33.8688,
              151.2093, 'NSW', 'New South Wales')
NEW_YORK = city('New York', 'US', 'United States', 'NA', 'North America',
                40.7128, -74.0060, 'NY', 'New York')
LYON = city('Lyon', 'FR', 'France', 'EU', 'Europe', 45.7640, 4.8357,
            'ARA', 'Auvergne-Rhone-Alpes')
TOKYO = city('Tokyo', 'JP', 'Japan', 'AS', 'Asia', 35.6762, 139.6503,
             '13', 'Tokyo')
# a country-only record: no city, no coordinates
COUNTRY_ONLY = {'country': {'iso_code': 'DE', 'names': {'en': 'Germany'}},
                'continent': {'code': 'EU', 'names': {'en': 'Europe'}}}

TEST_NETWORKS = [
    ('192.0.2.0/24', PARIS),
    ('198.51.100.0/24', SYDNEY),
    ('203.0.113.0/24', NEW_YORK),
    ('192.0.2.128/25', LYON),          # a more specific network inside PARIS'
    ('2001:db8::/32', TOKYO),
    ('100.64.0.0/16', COUNTRY_ONLY),
]


# ---- data section encoding ------------------------------------------------

def _ctrl(type_no, size):
    """Control byte(s) for a value of type_no with payload size."""
    out = bytearray()
    if size < 29:
        first, extra = size, b''
    elif size < 29 + 256:
        first, extra = 29, bytes([size - 29])
    elif size < 285 + 65536:
        first, extra = 30, struct.pack('>H', size - 285)
    else:
        first, extra = 31, struct.pack('>I', size - 65821)[1:]
    if type_no <= 7:
        out.append((type_no << 5) | first)
    else:
        out.append(first)
        out.append(type_no - 7)
    return bytes(out) + extra


def _uint(type_no, v):
    b = v.to_bytes((v.bit_length() + 7) // 8, 'big') if v else b''
    return _ctrl(type_no, len(b)) + b


def encode(v):
    if isinstance(v, tuple):               # ('uint16'|'uint32'|'uint64', n)
        kind, n = v
        return _uint({'uint16': 5, 'uint32': 6, 'uint64': 9}[kind], n)
    if isinstance(v, bool):
        return _ctrl(14, 1 if v else 0)
    if isinstance(v, str):
        b = v.encode('utf-8')
        return _ctrl(2, len(b)) + b
    if isinstance(v, float):
        return _ctrl(3, 8) + struct.pack('>d', v)
    if isinstance(v, int):
        return _uint(6, v)
    if isinstance(v, dict):
        out = _ctrl(7, len(v))
        for k, x in v.items():
            out += encode(str(k)) + encode(x)
        return out
    if isinstance(v, list):
        out = _ctrl(11, len(v))
        for x in v:
            out += encode(x)
        return out
    raise TypeError('cannot encode %r' % (v,))


# ---- search tree ------------------------------------------------------------

class _Node:
    __slots__ = ('kids', 'num')

    def __init__(self):
        self.kids = [None, None]   # _Node, ('data', offset) or None
        self.num = 0


def _insert(root, net, data_ref):
    if net.version == 4:
        bits = (int(net.network_address) | 0)  # ::a.b.c.d
        plen = 96 + net.prefixlen
    else:
        bits = int(net.network_address)
        plen = net.prefixlen
    node = root
    for i in range(plen):
        bit = (bits >> (127 - i)) & 1
        last = i == plen - 1
        cur = node.kids[bit]
        if last:
            if isinstance(cur, _Node):
                _fill(cur, data_ref)   # a wider network over narrower ones
            else:
                node.kids[bit] = data_ref
            return
        if not isinstance(cur, _Node):
            child = _Node()
            if cur is not None:        # split a wider network's leaf
                child.kids = [cur, cur]
            node.kids[bit] = child
            cur = child
        node = cur


def _fill(node, data_ref):
    for b in (0, 1):
        k = node.kids[b]
        if isinstance(k, _Node):
            _fill(k, data_ref)
        elif k is None:
            node.kids[b] = data_ref


def write_mmdb(path, networks, database_type='m365fwd-Test-City',
               build_epoch=1700000000):
    """networks: [(cidr, record dict)]; wider networks should come first
    (a narrower one inserted later overrides part of it)."""
    data = bytearray()
    refs = {}
    root = _Node()
    for cidr, rec in networks:
        key = repr(rec)
        if key not in refs:
            refs[key] = ('data', len(data))
            data += encode(rec)
        _insert(root, ipaddress.ip_network(cidr), refs[key])
    nodes = []
    stack = [root]
    while stack:                       # number nodes depth first
        n = stack.pop()
        n.num = len(nodes)
        nodes.append(n)
        for k in (1, 0):
            if isinstance(n.kids[k], _Node):
                stack.append(n.kids[k])
    count = len(nodes)
    tree = bytearray()
    for n in nodes:
        vals = []
        for k in n.kids:
            if isinstance(k, _Node):
                vals.append(k.num)
            elif k is None:
                vals.append(count)
            else:
                vals.append(count + 16 + k[1])
        for v in vals:
            if v >= 1 << 24:
                raise ValueError('database too large for 24-bit records')
            tree += v.to_bytes(3, 'big')
    meta = {
        'node_count': ('uint32', count),
        'record_size': ('uint16', 24),
        'ip_version': ('uint16', 6),
        'database_type': database_type,
        'languages': ['en'],
        'binary_format_major_version': ('uint16', 2),
        'binary_format_minor_version': ('uint16', 0),
        'build_epoch': ('uint64', build_epoch),
        'description': {'en': 'm365fwd test database'},
    }
    with open(path, 'wb') as f:
        f.write(bytes(tree) + b'\0' * 16 + bytes(data) + METADATA_MARKER +
                encode(meta))


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    write_mmdb(argv[1], TEST_NETWORKS)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
