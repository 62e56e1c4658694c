"""Validates custom resources against their CustomResourceDefinitions, offline, as `kubectl apply` with the API
server's strict field validation would: each document of the manifests whose API group a CRD in CRD_DIR serves is
checked against that CRD's spec.versions[name=<version>].schema.openAPIV3Schema.

As the API server reads a structural schema: an object without additionalProperties and without
x-kubernetes-preserve-unknown-fields: true is closed (an unknown field is refused), x-kubernetes-int-or-string is an
integer or a string, x-kubernetes-list-type set/map items are unique (a map's by its keys), and metadata is an
ObjectMeta. Not checked: formats (int64 alone in these CRDs' specs) and x-kubernetes-validations (CEL, none here).

Usage: python validate_crds.py CRD_DIR MANIFEST...  (deploy/helm/chart.test.ts runs it with kubernetes-validate's
virtualenv, which has jsonschema and PyYAML). Prints PASS or FAIL for each custom resource; exits 1 on a FAIL.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from jsonschema import Draft4Validator, ValidationError, validators


class Loader(yaml.SafeLoader):
    """YAML as Kubernetes reads it: a timestamp-like scalar stays a string."""


Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

STRING = {"type": "string"}
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# The ObjectMeta fields a manifest sets (the rest the API server sets itself).
OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": DNS_SUBDOMAIN},
        "generateName": STRING,
        "namespace": STRING,
        "labels": {"type": "object", "additionalProperties": STRING},
        "annotations": {"type": "object", "additionalProperties": STRING},
        "finalizers": {"type": "array", "items": STRING},
        "ownerReferences": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    },
    "anyOf": [{"required": ["name"]}, {"required": ["generateName"]}],
}


def structural(schema: dict) -> dict:
    """A CRD's OpenAPI v3 schema as JSON Schema that refuses what the API server refuses."""
    s = {k: v for k, v in schema.items() if k != "description"}
    if "properties" in s:
        s["properties"] = {k: structural(v) for k, v in s["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(s.get(key), dict):
            s[key] = structural(s[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in s:
            s[key] = [structural(v) for v in s[key]]
    if s.get("type") == "object" and "additionalProperties" not in s:
        s["additionalProperties"] = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    if s.get("x-kubernetes-int-or-string") and "anyOf" not in s:
        s["anyOf"] = [{"type": "integer"}, STRING]
    if s.get("x-kubernetes-list-type") == "set":
        s["uniqueItems"] = True
    if s.get("nullable") and "type" in s:
        s["type"] = [s["type"], "null"]
    return s


def list_map_keys(validator, keys, instance, schema):
    """x-kubernetes-list-type: map: no two items with the same keys."""
    if schema.get("x-kubernetes-list-type") != "map" or not validator.is_type(instance, "array"):
        return
    seen = set()
    for item in instance:
        if not isinstance(item, dict):
            continue
        key = repr([item.get(k) for k in keys])
        if key in seen:
            yield ValidationError(f"duplicate entry with {', '.join(f'{k}: {item.get(k)}' for k in keys)}")
        seen.add(key)


Validator = validators.extend(Draft4Validator, {"x-kubernetes-list-map-keys": list_map_keys})


def load_crds(crd_dir: Path) -> dict:
    """(group, version, kind) -> its schema, from every CRD in crd_dir's *.yaml."""
    schemas = {}
    for file in sorted(crd_dir.glob("*.yaml")):
        for crd in yaml.load_all(file.read_text(), Loader=Loader):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                schema = structural(version["schema"]["openAPIV3Schema"])
                schema["properties"]["metadata"] = structural(OBJECT_META)
                schemas[(spec["group"], version["name"], spec["names"]["kind"])] = schema
    return schemas


def where(error: ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(root)"


def errors_of(doc: dict, schema: dict | None) -> list[ValidationError]:
    if schema is None:
        return [ValidationError("no CRD here serves this kind and version")]
    return sorted(Validator(schema).iter_errors(doc), key=lambda e: [(isinstance(p, str), p) for p in e.absolute_path])


def main(crd_dir: str, *manifests: str) -> int:
    schemas = load_crds(Path(crd_dir))
    groups = {group for group, _, _ in schemas}
    failed = False
    for file in manifests:
        for doc in yaml.load_all(Path(file).read_text(), Loader=Loader):
            group, _, version = str((doc or {}).get("apiVersion", "")).rpartition("/")
            if group not in groups:
                continue
            errors = errors_of(doc, schemas.get((group, version, doc.get("kind"))))
            failed = failed or bool(errors)
            name = (doc.get("metadata") or {}).get("name")
            print(f"{'FAIL' if errors else 'PASS'} {file}: {doc.get('kind')} {name} ({group}/{version})")
            for error in errors:
                print(f"  {where(error)}: {error.message}")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
