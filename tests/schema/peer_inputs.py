"""Peers' test records for the schema tests, read in place: Elastic's
golden inputs (../shared/peer-ecs; the integrations files hold each input in
event.original, written here to one NDJSON file) and the Panther/Wazuh
cases (../shared/peer-detect). Never copied into the project."""
import glob
import json
import os


def peer_files(shared, tmpdir):
    """Files to normalize (empty when ../shared lacks them)."""
    files = sorted(glob.glob(os.path.join(shared, 'peer-ecs', 'beats', '*.log')))
    files += glob.glob(os.path.join(shared, 'peer-detect', 'cases.ndjson'))
    originals = []
    for f in sorted(glob.glob(os.path.join(shared, 'peer-ecs', 'integrations',
                                           '*-expected.json'))):
        with open(f, encoding='utf-8') as fh:
            originals += [d['event']['original'] for d in json.load(fh)['expected']]
    if originals:
        p = os.path.join(tmpdir, 'peer-originals.ndjson')
        with open(p, 'w', encoding='utf-8') as fh:
            fh.write('\n'.join(json.dumps(json.loads(o)) for o in originals) + '\n')
        files.append(p)
    return files
