#!/usr/bin/env python3
"""Validate OCSF events (NDJSON) against an OCSF schema source tree.

Usage: ocsf_validate.py [--schema DIR] [FILE|-]...
The schema directory is the ocsf-schema repository layout (dictionary.json,
categories.json, events/, objects/, profiles/); default $OCSF_SCHEMA_DIR.

Checks, per event: class_uid known; category_uid and type_uid consistent;
required attributes of the class and (recursively) of every object present
(profile requirements only for profiles listed in metadata.profiles);
every attribute known to its class/object (free-form json_t / "object"
values are not entered); types; enum values of *_id attributes;
at_least_one / just_one constraints. Each violation is printed as
"FILE:LINE: PATH: message". Exit 0 when all events are valid, 1 otherwise,
2 on usage or schema errors. Python 3 standard library only.
"""
import copy
import ipaddress
import json
import os
import re
import sys


class SchemaError(Exception):
    pass


def _load(path):
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _merge_attr(base, over):
    """Merge one attribute definition over another; enums are united."""
    out = dict(base)
    for k, v in over.items():
        if k == 'enum' and isinstance(out.get('enum'), dict):
            e = dict(out['enum'])
            e.update(v)
            out['enum'] = e
        else:
            out[k] = v
    return out


class Schema:
    def __init__(self, root):
        self.root = root
        if not os.path.isfile(os.path.join(root, 'dictionary.json')):
            raise SchemaError('%s: no dictionary.json (not an OCSF schema tree)'
                              % root)
        d = _load(os.path.join(root, 'dictionary.json'))
        self.dict_attrs = d['attributes']
        self.types = d['types']['attributes']
        self.categories = {k: v['uid'] for k, v in
                           _load(os.path.join(root, 'categories.json'))
                           ['attributes'].items()}
        self.raw_objects = {}
        for fn in os.listdir(os.path.join(root, 'objects')):
            if fn.endswith('.json'):
                o = _load(os.path.join(root, 'objects', fn))
                self.raw_objects[o['name']] = o
        self.raw_events = {}
        for dirpath, _dirs, files in os.walk(os.path.join(root, 'events')):
            for fn in files:
                if fn.endswith('.json'):
                    e = _load(os.path.join(dirpath, fn))
                    self.raw_events[e['name']] = e
        self._objects = {}
        self.classes = {}      # class_uid -> resolved class
        for name, e in self.raw_events.items():
            if 'uid' not in e:
                continue
            r = self._resolve(e, self.raw_events, 'event')
            cat = r.get('category')
            if cat not in self.categories:
                continue
            cat_uid = self.categories[cat]
            r['category_uid'] = cat_uid
            r['class_uid'] = cat_uid * 1000 + e['uid']
            self.classes[r['class_uid']] = r

    def _include(self, attrs, inc_list):
        for inc in inc_list:
            p = _load(os.path.join(self.root, inc))
            prof = p.get('name') if p.get('meta') == 'profile' else None
            for k, v in p.get('attributes', {}).items():
                v = dict(v)
                if prof and 'profile' not in v:
                    v['profile'] = prof
                attrs[k] = _merge_attr(attrs.get(k, {}), v)

    def _resolve(self, raw, pool, kind):
        """Attributes of an event class or object after extends/$include."""
        chain = []
        cur = raw
        seen = set()
        while cur is not None:
            if cur['name'] in seen:
                raise SchemaError('extends loop at %s' % cur['name'])
            seen.add(cur['name'])
            chain.append(cur)
            parent = cur.get('extends')
            if not parent or parent == 'object' and kind == 'object':
                break
            if parent not in pool:
                raise SchemaError('%s extends unknown %s' % (cur['name'], parent))
            cur = pool[parent]
        attrs = {}
        constraints = {}
        category = None
        for c in reversed(chain):
            own = dict(c.get('attributes', {}))
            inc = own.pop('$include', [])
            self._include(attrs, inc)
            for k, v in own.items():
                v = dict(v)
                if 'profile' not in v and k in attrs and attrs[k].get('profile'):
                    # a class redefining a profile attribute keeps it gated
                    # unless it says profile: null
                    pass
                attrs[k] = _merge_attr(attrs.get(k, {}), v)
            if c.get('constraints'):
                constraints = c['constraints']
            if c.get('category'):
                category = c['category']
        # complete every attribute from the dictionary
        full = {}
        for k, v in attrs.items():
            base = self.dict_attrs.get(k)
            if base is None:
                raise SchemaError('%s: attribute %s not in dictionary'
                                  % (raw['name'], k))
            full[k] = _merge_attr(base, v)
        return {'name': raw['name'], 'attributes': full,
                'constraints': constraints, 'category': category}

    def object(self, name):
        if name not in self._objects:
            if name not in self.raw_objects:
                raise SchemaError('unknown object type %s' % name)
            self._objects[name] = self._resolve(self.raw_objects[name],
                                                self.raw_objects, 'object')
        return self._objects[name]

    def base_type(self, t):
        """Primitive type behind a dictionary type (email_t -> string_t)."""
        seen = 0
        while t in self.types and 'type' in self.types[t] and seen < 5:
            t = self.types[t]['type']
            seen += 1
        return t


_INT_TYPES = ('integer_t', 'long_t')


class Validator:
    def __init__(self, schema):
        self.s = schema

    def validate(self, ev):
        """List of (path, message) for one event."""
        errs = []
        if not isinstance(ev, dict):
            return [('$', 'event is not an object')]
        cu = ev.get('class_uid')
        if not isinstance(cu, int) or isinstance(cu, bool):
            return [('class_uid', 'missing or not an integer')]
        cls = self.s.classes.get(cu)
        if cls is None:
            return [('class_uid', 'unknown class %r' % cu)]
        md = ev.get('metadata')
        profiles = set()
        if isinstance(md, dict) and isinstance(md.get('profiles'), list):
            profiles = {p for p in md['profiles'] if isinstance(p, str)}
        self._check_obj(ev, cls, '', profiles, errs, cls['name'])
        if ev.get('category_uid') != cls['category_uid']:
            errs.append(('category_uid', 'is %r, class %d is in category %d'
                         % (ev.get('category_uid'), cu, cls['category_uid'])))
        act = ev.get('activity_id')
        if isinstance(act, int) and ev.get('type_uid') != cu * 100 + act:
            errs.append(('type_uid', 'is %r, expected class_uid*100+activity_id'
                         ' = %d' % (ev.get('type_uid'), cu * 100 + act)))
        return errs

    def _check_obj(self, val, spec, path, profiles, errs, what):
        attrs = spec['attributes']
        for k, v in val.items():
            p = path + k if not path else path + '.' + k
            a = attrs.get(k)
            if a is None:
                errs.append((p, 'unknown attribute of %s' % what))
                continue
            prof = a.get('profile')
            if prof and prof not in profiles:
                errs.append((p, 'attribute of profile %s, which is not in '
                             'metadata.profiles' % prof))
            if v is None:
                continue
            self._check_value(v, a, k, p, profiles, errs)
        for k, a in attrs.items():
            if a.get('requirement') != 'required':
                continue
            prof = a.get('profile')
            if prof and prof not in profiles:
                continue
            if val.get(k) is None:
                errs.append(((path + '.' if path else '') + k,
                             'required attribute of %s missing' % what))
        cons = spec.get('constraints') or {}
        for kind, names in cons.items():
            present = [n for n in names if val.get(n) is not None]
            if kind == 'at_least_one' and not present:
                errs.append((path or '$', '%s needs at least one of %s'
                             % (what, ', '.join(names))))
            elif kind == 'just_one' and len(present) != 1:
                errs.append((path or '$', '%s needs exactly one of %s'
                             % (what, ', '.join(names))))

    def _check_value(self, v, a, name, path, profiles, errs):
        t = a.get('type')
        if a.get('is_array'):
            if not isinstance(v, list):
                errs.append((path, 'expected an array of %s' % t))
                return
            for i, x in enumerate(v):
                if x is None:
                    errs.append(('%s[%d]' % (path, i), 'null in array'))
                    continue
                self._check_scalar(x, a, t, name, '%s[%d]' % (path, i),
                                   profiles, errs)
        else:
            if isinstance(v, list) and t not in ('json_t',):
                errs.append((path, 'expected %s, got an array' % t))
                return
            self._check_scalar(v, a, t, name, path, profiles, errs)

    def _check_scalar(self, v, a, t, name, path, profiles, errs):
        s = self.s
        if t == 'json_t' or t == 'object':
            if t == 'object' and not isinstance(v, dict):
                errs.append((path, 'expected an object'))
            return
        if t in s.raw_objects:
            if not isinstance(v, dict):
                errs.append((path, 'expected object %s' % t))
                return
            self._check_obj(v, s.object(t), path, profiles, errs, t)
            return
        base = s.base_type(t)
        ok = True
        if base in _INT_TYPES:
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif base == 'float_t':
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        elif base == 'boolean_t':
            ok = isinstance(v, bool)
        elif base == 'string_t':
            ok = isinstance(v, str)
        else:
            errs.append((path, 'unknown type %s' % t))
            return
        if not ok:
            errs.append((path, 'expected %s, got %s' % (t, type(v).__name__)))
            return
        td = s.types.get(t, {})
        if t == 'ip_t':
            try:
                ipaddress.ip_address(v)
            except ValueError:
                errs.append((path, 'not an IP address: %r' % v))
        elif td.get('regex') and isinstance(v, str):
            if not re.search(td['regex'], v):
                errs.append((path, '%r does not match %s' % (v, t)))
        rng = td.get('range')
        if rng and isinstance(v, int) and not rng[0] <= v <= rng[1]:
            errs.append((path, '%d out of range %s' % (v, rng)))
        enum = a.get('enum')
        if enum and name.endswith('_id'):
            if str(v) not in enum:
                errs.append((path, 'value %r not in enum (%s)'
                             % (v, ', '.join(sorted(enum, key=lambda x: int(x)
                                                    if x.lstrip('-').isdigit()
                                                    else 0)))))


def schema_dir_default():
    d = os.environ.get('OCSF_SCHEMA_DIR')
    if d:
        return d
    if os.environ.get('MF_SHARED'):
        return os.path.join(os.environ['MF_SHARED'], 'schemas', 'ocsf-1.8.0')
    if os.environ.get('MF_SOURCE_ROOT'):
        return os.path.join(os.environ['MF_SOURCE_ROOT'], '..', 'shared',
                            'schemas', 'ocsf-1.8.0')
    return None


def validate_lines(validator, name, lines, out=sys.stdout):
    """Validate NDJSON lines; returns (events, invalid events)."""
    n = bad = 0
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        n += 1
        try:
            ev = json.loads(line)
        except ValueError as e:
            print('%s:%d: $: not JSON: %s' % (name, lineno, e), file=out)
            bad += 1
            continue
        errs = validator.validate(ev)
        if errs:
            bad += 1
            for p, m in errs:
                print('%s:%d: %s: %s' % (name, lineno, p, m), file=out)
    return n, bad


def main(argv):
    args = argv[1:]
    sdir = None
    if args[:1] == ['--schema']:
        if len(args) < 2:
            print('usage: ocsf_validate.py [--schema DIR] [FILE|-]...',
                  file=sys.stderr)
            return 2
        sdir, args = args[1], args[2:]
    sdir = sdir or schema_dir_default()
    if not sdir:
        print('ocsf_validate.py: no schema (use --schema or OCSF_SCHEMA_DIR)',
              file=sys.stderr)
        return 2
    try:
        v = Validator(Schema(sdir))
    except (OSError, SchemaError, ValueError, KeyError) as e:
        print('ocsf_validate.py: %s' % e, file=sys.stderr)
        return 2
    total = bad = 0
    for f in args or ['-']:
        if f == '-':
            n, b = validate_lines(v, '<stdin>', sys.stdin)
        else:
            with open(f, encoding='utf-8', errors='replace') as fh:
                n, b = validate_lines(v, f, fh)
        total += n
        bad += b
    print('%d events, %d invalid' % (total, bad), file=sys.stderr)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
