"""`ModelTarget`: which model, version (or label) and signature a call is for.

One type for both ends of the wire: the client builds it from its arguments and writes it as
a gRPC `ModelSpec` or a REST path; the server reads it back from either. The rules are TF
Serving's: a version or a label, never both (ModelSpec's `version_choice` is a oneof); neither
means the latest version; an empty signature name means `serving_default`.
"""

from __future__ import annotations

import dataclasses
import urllib.parse

from tensorflow_serving.apis import model_pb2

from zoo.protocol.names import DEFAULT_SIGNATURE


@dataclasses.dataclass(frozen=True)
class ModelTarget:
    """A model name, an optional version or label, and a signature name ("": the default)."""

    name: str
    version: int | None = None
    label: str | None = None
    signature_name: str = ""

    def __post_init__(self):
        if self.version is not None and self.label is not None:
            raise ValueError(f"model '{self.name}': give a version or a label, not both")

    @property
    def signature(self) -> str:
        """The signature that runs: the named one, or `serving_default` when none is named."""
        return self.signature_name or DEFAULT_SIGNATURE

    @classmethod
    def from_proto(cls, spec: model_pb2.ModelSpec) -> ModelTarget:
        """The target a request's ModelSpec names."""
        choice = spec.WhichOneof("version_choice")
        return cls(
            name=spec.name,
            version=spec.version.value if choice == "version" else None,
            label=spec.version_label if choice == "version_label" else None,
            signature_name=spec.signature_name,
        )

    def fill(self, spec: model_pb2.ModelSpec, *, with_signature: bool = True) -> None:
        """Write this target into a request's ModelSpec (GetModelStatus has no signature)."""
        spec.name = self.name
        if with_signature:
            spec.signature_name = self.signature_name
        if self.version is not None:
            spec.version.value = self.version
        elif self.label is not None:
            spec.version_label = self.label

    def served_by(self, version: int) -> model_pb2.ModelSpec:
        """The ModelSpec a response carries (TF Serving's MakeModelSpec): the request's
        model name, the signature that ran, the version that served."""
        spec = model_pb2.ModelSpec(name=self.name, signature_name=self.signature)
        spec.version.value = version
        return spec

    def rest_path(self, suffix: str = "") -> str:
        """The REST route: /v1/models/{name}[/versions/{v}|/labels/{l}]{suffix}."""
        path = f"/v1/models/{urllib.parse.quote(self.name, safe='')}"
        if self.version is not None:
            path += f"/versions/{self.version}"
        elif self.label is not None:
            path += f"/labels/{urllib.parse.quote(self.label, safe='')}"
        return path + suffix
