#!/usr/bin/env python3
"""Validate ECS events (one JSON object per line) against ECS ecs_flat.yml.

Usage: ecs_validate.py [FILE...]      (stdin when no FILE)
Exit:  0 all valid, 1 violations (printed as FILE:LINE: field: reason),
       77 when the ECS schema is not available (skip).

Rules: every flattened field must exist in ECS with a compatible JSON type
(keyword-like -> string, integer types -> integer, float types -> number,
boolean, date -> ISO 8601 string, ip -> valid address; arrays of the type
are accepted as Elasticsearch does); fields with ECS allowed_values
(event.kind/category/type/outcome) must use one; object/flattened/nested
fields take objects. Custom fields are allowed only under o365.* and
m365fwd.*. @timestamp is required.

The schema is $MF_SHARED/schemas/ecs-9.4.0/ecs_flat.yml, else
$MF_SOURCE_ROOT/../shared/..., else ../../../shared/... from this script.
"""
import ipaddress
import json
import os
import re
import sys

SKIP = 77
CUSTOM_ROOTS = ('o365', 'm365fwd')
SCHEMA_REL = os.path.join('schemas', 'ecs-9.4.0', 'ecs_flat.yml')

STRING_TYPES = {'keyword', 'wildcard', 'constant_keyword', 'text',
                'match_only_text'}
INT_TYPES = {'long', 'integer', 'short', 'byte', 'unsigned_long'}
FLOAT_TYPES = {'float', 'double', 'scaled_float', 'half_float'}
OBJECT_TYPES = {'object', 'flattened', 'nested'}
DATE_RE = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?'
                     r'(Z|[+-]\d{2}:?\d{2})$')


def schema_path():
    """Where ecs_flat.yml is, or None."""
    cands = []
    if os.environ.get('MF_SHARED'):
        cands.append(os.path.join(os.environ['MF_SHARED'], SCHEMA_REL))
    if os.environ.get('MF_SOURCE_ROOT'):
        cands.append(os.path.join(os.environ['MF_SOURCE_ROOT'], '..', 'shared',
                                  SCHEMA_REL))
    here = os.path.dirname(os.path.abspath(__file__))
    cands.append(os.path.join(here, '..', '..', '..', 'shared', SCHEMA_REL))
    for c in cands:
        if os.path.isfile(c):
            return os.path.normpath(c)
    return None


class EcsSchema:
    """Field table from ecs_flat.yml."""

    def __init__(self, path):
        import yaml
        loader = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)
        with open(path, encoding='utf-8') as f:
            flat = yaml.load(f, Loader=loader)
        self.fields = {}
        self.prefixes = set()
        for name, spec in flat.items():
            allowed = None
            if spec.get('allowed_values'):
                allowed = {a['name'] for a in spec['allowed_values']}
            self.fields[name] = (spec['type'], allowed)
            parts = name.split('.')
            for i in range(1, len(parts)):
                self.prefixes.add('.'.join(parts[:i]))

    def validate(self, event):
        """List of (field, reason) for one decoded event."""
        out = []
        if not isinstance(event, dict):
            return [('', 'event is not a JSON object')]
        if '@timestamp' not in event:
            out.append(('@timestamp', 'required field missing'))
        self._walk('', event, out)
        return out

    def _walk(self, prefix, obj, out):
        for key, val in obj.items():
            path = prefix + key if not prefix else prefix + '.' + key
            if key == '':
                out.append((path, 'empty field name'))
                continue
            root = path.split('.', 1)[0]
            if root in CUSTOM_ROOTS:
                continue
            spec = self.fields.get(path)
            if spec is not None:
                self._check(path, spec, val, out)
            elif isinstance(val, dict) and path in self.prefixes:
                self._walk(path, val, out)
            elif isinstance(val, dict):
                out.append((path, 'not an ECS field set (custom fields only '
                                  'under o365.* and m365fwd.*)'))
            else:
                out.append((path, 'not an ECS field (custom fields only '
                                  'under o365.* and m365fwd.*)'))

    def _check(self, path, spec, val, out):
        etype, allowed = spec
        if etype in OBJECT_TYPES:
            items = val if (etype == 'nested' and isinstance(val, list)) else [val]
            for v in items:
                if not isinstance(v, dict):
                    out.append((path, 'ECS type %s needs an object, got %s'
                                % (etype, type_name(v))))
            return
        items = val if isinstance(val, list) else [val]
        for v in items:
            reason = scalar_problem(etype, v)
            if reason:
                out.append((path, reason))
            elif allowed is not None and v not in allowed:
                out.append((path, '%r is not an ECS allowed value' % (v,)))


def type_name(v):
    if v is None:
        return 'null'
    if isinstance(v, bool):
        return 'boolean'
    if isinstance(v, (int, float)):
        return 'number'
    if isinstance(v, str):
        return 'string'
    if isinstance(v, list):
        return 'array'
    return 'object'


def scalar_problem(etype, v):
    """Why v does not fit ECS type etype, or None."""
    if v is None:
        return None          # null is "no value" for Elasticsearch
    if isinstance(v, (list, dict)):
        return 'ECS type %s cannot hold a nested %s' % (etype, type_name(v))
    if etype in STRING_TYPES:
        return None if isinstance(v, str) else \
            'ECS type %s needs a string, got %s' % (etype, type_name(v))
    if etype in INT_TYPES:
        if isinstance(v, int) and not isinstance(v, bool):
            return None
        return 'ECS type %s needs an integer, got %s' % (etype, type_name(v))
    if etype in FLOAT_TYPES:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return None
        return 'ECS type %s needs a number, got %s' % (etype, type_name(v))
    if etype == 'boolean':
        return None if isinstance(v, bool) else \
            'ECS type boolean needs true/false, got %s' % type_name(v)
    if etype == 'date':
        if isinstance(v, str) and DATE_RE.match(v):
            return None
        return 'ECS type date needs an ISO 8601 string, got %r' % (v,)
    if etype == 'ip':
        if isinstance(v, str):
            try:
                ipaddress.ip_address(v)
                return None
            except ValueError:
                pass
        return 'ECS type ip needs an IP address, got %r' % (v,)
    if etype == 'geo_point':
        return None if isinstance(v, (str, dict)) else \
            'ECS type geo_point needs a string or object'
    return None


def validate_lines(schema, lines, name):
    """Validate NDJSON lines; returns a list of 'NAME:LINE: field: reason'."""
    errors = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as e:
            errors.append('%s:%d: (line): not JSON: %s' % (name, no, e))
            continue
        for field, reason in schema.validate(event):
            errors.append('%s:%d: %s: %s' % (name, no, field or '(event)', reason))
    return errors


def load_schema_or_skip():
    path = schema_path()
    if not path:
        print('SKIP: ECS schema %s not found (set MF_SHARED or keep ../shared '
              'next to the source tree)' % SCHEMA_REL)
        sys.exit(SKIP)
    return EcsSchema(path)


def main(argv):
    schema = load_schema_or_skip()
    errors = []
    if len(argv) > 1:
        for p in argv[1:]:
            with open(p, encoding='utf-8', errors='replace') as f:
                errors += validate_lines(schema, f, p)
    else:
        errors += validate_lines(schema, sys.stdin, '<stdin>')
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
