"""Render a kustomization in Python: the subset deploy/k8s uses, for machines without kustomize.

Supported: `resources` (files and directories holding a kustomization), `namespace`,
`labels` (metadata labels only: `includeSelectors: false`, no templates), `images`
(name → newName/newTag on containers and init containers) and `patches` given inline as
JSON 6902 operations with a `target` of kind and name. Anything else is refused, so a new
kustomize feature in deploy/k8s fails the test instead of being silently ignored. When
`kubectl` is installed, tests/test_deploy.py checks that both renderings agree.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

_SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def render(directory: Path) -> list[Resource]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - _SUPPORTED
    if unknown:
        raise ValueError(f"{directory}: kustomization fields not supported here: {unknown}")
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(render(path))
        else:
            resources.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for label in kustomization.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise ValueError("only metadata labels are supported")
        for resource in resources:
            resource.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
    for image in kustomization.get("images", []):
        for resource in resources:
            for container in _containers(resource):
                _set_image(container, image)
    for patch in kustomization.get("patches", []):
        target = patch["target"]
        if set(target) - {"kind", "name"} or "path" in patch:
            raise ValueError("only inline JSON 6902 patches targeted by kind and name")
        matched = [
            r
            for r in resources
            if r["kind"] == target.get("kind", r["kind"])
            and r["metadata"]["name"] == target.get("name", r["metadata"]["name"])
        ]
        if not matched:
            raise ValueError(f"patch target {target} matches no resource")
        for resource in matched:
            for operation in yaml.safe_load(patch["patch"]):
                _apply(resource, operation)
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in _CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = kustomization["namespace"]
    return resources


def _containers(resource: Resource) -> list[dict[str, Any]]:
    spec = resource.get("spec", {})
    pod = spec.get("template", {}).get("spec") or spec.get("jobTemplate", {}).get("spec", {}).get(
        "template", {}
    ).get("spec", {})
    return [*pod.get("containers", []), *pod.get("initContainers", [])]


def _set_image(container: dict[str, Any], image: dict[str, str]) -> None:
    current = container.get("image", "")
    name, _, tag = current.partition(":")
    if name != image["name"]:
        return
    container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}".rstrip(":")


def _apply(document: Resource, operation: dict[str, Any]) -> None:
    *parents, last = [
        p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]
    ]
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    op = operation["op"]
    if op == "remove":
        del node[int(last) if isinstance(node, list) else last]
    elif op in ("add", "replace"):
        value = copy.deepcopy(operation["value"])
        if isinstance(node, list):
            if last == "-":
                node.append(value)
            elif op == "add":
                node.insert(int(last), value)
            else:
                node[int(last)] = value
        else:
            if op == "replace" and last not in node:
                raise KeyError(f"replace of a missing {operation['path']}")
            node[last] = value
    else:
        raise ValueError(f"JSON patch op {op!r} is not supported here")
