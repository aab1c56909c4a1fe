"""CustomResourceDefinitions and the custom resources they define, as apiextensions-apiserver has them.

Pure functions on JSON-like dicts, no HTTP and no storage. Data flows through the modules in
this order:

- :mod:`.decoding` checks every field of a CRD written has the JSON type its Go field takes (as
  kube-apiserver's typed decoding does, before anything else reads it);
- :mod:`.definition` validates and defaults a CRD object itself (names, versions, subresources,
  printer columns, selectable fields, conversion), with :mod:`.schemacheck` for each version's
  ``openAPIV3Schema`` (the structural-schema rules);
- :mod:`.naming` decides which names a CRD may take among the others of its group, never a
  built-in's plural (``NamesAccepted``), and :mod:`.model` turns a served CRD into one
  :class:`~k3py.api.resources.Resource` per served version, carrying a :class:`.model.CustomResource`;
- for each custom resource written: :mod:`.pruning` drops unknown fields (and non-nullable
  nulls), :mod:`.defaulting` applies ``default`` values, :mod:`.values` validates against the
  schema with kube-openapi's messages; :mod:`.columns` (with :mod:`.jsonpath`) prints the
  additional printer columns of a Table.

``x-kubernetes-validations`` (CEL) rules are accepted in schemas but not evaluated: k3py has no
CEL interpreter (see :mod:`.values`).
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "apiextensions.k8s.io"
VERSION: Final = "v1"
PLURAL: Final = "customresourcedefinitions"
CLEANUP_FINALIZER: Final = "customresourcecleanup.apiextensions.k8s.io"
"""Held by a CRD being deleted until its custom resources are gone."""
