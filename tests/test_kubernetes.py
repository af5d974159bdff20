"""deploy/kubernetes, checked without a cluster: every manifest against the Kubernetes API's
JSON schemas (kubernetes-validate, strict: an unknown or misspelt field fails), the kustomize
layout's references, and the flags and configs TF Serving gets, parsed by `zoo serve`'s flag
parser and TF Serving's protos, as tests/test_docker_compose.py checks the compose file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tensorflow as tf
import yaml

from tests.test_docker_compose import _serving_flags

kubernetes_validate = pytest.importorskip("kubernetes_validate")

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy" / "kubernetes"
BASE = DEPLOY / "base"
SCHEMAS = f"v{kubernetes_validate.latest_version()}-local-strict"  # e.g. v1.37.0-local-strict


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _resources(folder: Path) -> dict[str, dict]:
    """A kustomization's resources by kind (one of each here)."""
    kustomization = _documents(folder / "kustomization.yaml")[0]
    found = {}
    for name in kustomization["resources"]:
        for doc in _documents(folder / name):
            found[doc["kind"]] = doc
    return found


def _validate_fragment(value, schema_file: str) -> None:
    """Validate part of a manifest against one of the API's schemas (a Container, a Volume)."""
    import jsonschema
    from kubernetes_validate.utils import schema_contents
    from referencing import Registry, Resource

    schema = schema_contents(f"kubernetes-json-schema/{SCHEMAS}/{schema_file}", SCHEMAS)
    definitions = schema_contents(f"kubernetes-json-schema/{SCHEMAS}/_definitions.json", SCHEMAS)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    jsonschema.validators.Draft202012Validator(schema, registry=registry).validate(value)


@pytest.fixture(scope="module")
def base():
    return _resources(BASE)


def _generated_config_map() -> dict:
    """The ConfigMap that the kustomization's configMapGenerator makes."""
    (generator,) = _documents(BASE / "kustomization.yaml")[0]["configMapGenerator"]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]},
            "data": {Path(f).name: (BASE / f).read_text() for f in generator["files"]}}


def test_every_manifest_validates_against_the_kubernetes_api_schemas(base):
    for resource in [*base.values(), _generated_config_map()]:
        kubernetes_validate.validate(resource, kubernetes_validate.latest_version(), strict=True)
    assert set(base) == {"PersistentVolumeClaim", "Deployment", "Service", "HorizontalPodAutoscaler"}


def test_a_misspelt_field_is_caught_by_the_validation(base):
    broken = json.loads(json.dumps(base["Deployment"]))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # sic
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_the_kustomizations_name_files_that_exist():
    for folder in (BASE, *(DEPLOY / "overlays").iterdir()):
        kustomization = _documents(folder / "kustomization.yaml")[0]
        assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
        for name in kustomization.get("resources", []):
            assert (folder / name).exists(), f"{folder}/{name}"
        for patch in kustomization.get("patches", []):
            assert "path" not in patch or (folder / patch["path"]).is_file()


def test_the_serving_configs_are_the_ones_docker_compose_mounts():
    for name in ("batching.config", "monitoring.config"):
        assert (BASE / name).read_text() == (REPO / "serving" / name).read_text(), \
            f"deploy/kubernetes/base/{name} differs from serving/{name}: copy it again"


def _container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_tf_serving_runs_the_release_the_zoo_trains_with_and_takes_zoo_serves_flags(base):
    container = _container(base["Deployment"])
    assert container["image"] == f"tensorflow/serving:{tf.__version__}"
    flags = _serving_flags(container["args"])  # every flag one that `zoo serve` parses too
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert (flags.port, flags.rest_api_port) == (ports["grpc"], ports["http"])
    # The same serving behaviour as docker-compose.yml: the same flags, ports aside.
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["serving"]["command"]
    assert sorted(a for a in container["args"] if not a.startswith(("--port=", "--rest_api_port="))) == sorted(compose)
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]


def test_the_flags_files_are_in_the_mounted_volumes_and_parse_with_the_protos(base, tmp_path):
    from zoo.server.config import load_batching_parameters, load_monitoring_config

    deployment = base["Deployment"]
    container = _container(deployment)
    flags = _serving_flags(container["args"])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert str(flags.model_config_file).startswith("/models/")
    claim = volumes[mounts["/models"]]["persistentVolumeClaim"]["claimName"]
    assert claim == base["PersistentVolumeClaim"]["metadata"]["name"]
    config_map = _generated_config_map()
    assert volumes[mounts["/serving"]]["configMap"]["name"] == config_map["metadata"]["name"]
    for flag, load in ((flags.batching_parameters_file, load_batching_parameters),
                       (flags.monitoring_config_file, load_monitoring_config)):
        folder, name = str(flag).rsplit("/", 1)
        assert folder == "/serving" and name in config_map["data"]
        (tmp_path / name).write_text(config_map["data"][name])
        load(tmp_path / name)  # raises on anything TF Serving's proto would refuse


def test_the_probes_ask_tf_servings_rest_routes_for_a_zoo_model(base):
    from zoo.registry import list_models
    from zoo.server.frontends.rest_v1 import STATUS_PATH

    container = _container(base["Deployment"])
    for probe in ("readinessProbe", "livenessProbe"):
        http = container[probe]["httpGet"]
        assert http["port"] == "http"
        match = STATUS_PATH.fullmatch(http["path"])
        assert match and match.group(1) in list_models(), http["path"]
    # Ready only when a version can answer (metadata), alive as long as the status route is.
    assert container["readinessProbe"]["httpGet"]["path"].endswith("/metadata")
    assert not container["livenessProbe"]["httpGet"]["path"].endswith("/metadata")


def test_the_service_and_autoscaler_point_at_the_deployment(base):
    deployment, service, hpa = base["Deployment"], base["Service"], base["HorizontalPodAutoscaler"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    port_names = {port["name"] for port in _container(deployment)["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} == port_names == {"grpc", "http"}
    assert {port["port"] for port in service["spec"]["ports"]} == {8500, 8501}  # TF Serving's and zoo serve's
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_the_bucket_overlay_patches_a_valid_sidecar_and_volume(base):
    (patch,) = _documents(DEPLOY / "overlays" / "bucket" / "bucket-sync.yaml")
    assert patch["metadata"]["name"] == base["Deployment"]["metadata"]["name"]
    spec = patch["spec"]["template"]["spec"]
    (sidecar,) = spec["containers"]
    _validate_fragment(sidecar, "container-v1.json")
    assert {"name": "models", "mountPath": "/models"} in sidecar["volumeMounts"]
    (volume,) = spec["volumes"]
    # A strategic merge patch: null deletes the claim, the emptyDir takes its place.
    merged = {k: v for k, v in volume.items() if v is not None}
    _validate_fragment(merged, "volume-v1.json")
    assert volume["persistentVolumeClaim"] is None and merged == {"name": "models", "emptyDir": {}}


def test_the_kserve_inference_service_serves_a_zoo_model_folder_with_the_tensorflow_runtime():
    from zoo.registry import list_models

    (service,) = _documents(DEPLOY / "kserve" / "inferenceservice.yaml")
    assert (service["apiVersion"], service["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    _validate_fragment(service["metadata"], "objectmeta-meta-v1.json")
    predictor = service["spec"]["predictor"]
    model = predictor["model"]
    # KServe's CRD schema is not in kubernetes-validate and its SDK pins pandas < 3: its own
    # fields are checked by name here, the core types inside them against the API schemas.
    assert set(predictor) <= {"minReplicas", "maxReplicas", "model"}
    assert set(model) <= {"modelFormat", "runtimeVersion", "storageUri", "resources", "protocolVersion"}
    assert model["modelFormat"] == {"name": "tensorflow"}
    assert model["runtimeVersion"] == tf.__version__  # TF Serving's image tag in KServe's runtime
    _validate_fragment(model["resources"], "resourcerequirements-v1.json")
    # storageUri is a model folder of the zoo's layout (numbered versions inside), not a version.
    *_, parent, name = model["storageUri"].rstrip("/").split("/")
    assert parent == "models" and name in list_models() and not name.isdigit()
    assert 1 <= predictor["minReplicas"] <= predictor["maxReplicas"]


def _merge_container(base: dict, patch: dict) -> dict:
    """A strategic merge of one container, as kustomize does it for these fields: maps merge,
    null deletes, ports and volumeMounts merge by their keys, args are replaced."""
    merged = json.loads(json.dumps(base))
    for key, value in patch.items():
        if key in ("ports", "volumeMounts"):
            index = "containerPort" if key == "ports" else "mountPath"
            kept = {item[index]: item for item in merged.get(key, [])}
            kept.update({item[index]: item for item in value})
            merged[key] = list(kept.values())
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {k: v for k, v in {**merged[key], **value}.items() if v is not None}
        else:
            merged[key] = value
    return merged


def test_the_zoo_serve_overlay_runs_zoo_serve_with_tls_from_a_secret_and_grpc_health_probes(base):
    overlay = DEPLOY / "overlays" / "zoo-serve"
    kustomization = _documents(overlay / "kustomization.yaml")[0]
    assert kustomization["resources"] == ["../../base"]
    (patch,) = _documents(overlay / kustomization["patches"][0]["path"])
    assert patch["metadata"]["name"] == base["Deployment"]["metadata"]["name"]
    spec = patch["spec"]["template"]["spec"]
    (container_patch,) = spec["containers"]
    container = _merge_container(_container(base["Deployment"]), container_patch)
    _validate_fragment(container, "container-v1.json")  # one handler a probe: the HTTP ones are gone
    assert container["image"].startswith("keras-zoo-serve:")  # the Dockerfile's zoo-serve target
    flags = _serving_flags(container["args"])
    # The base's TF Serving flags, all kept, plus TLS and the drain.
    assert container["args"][:len(_container(base["Deployment"])["args"])] == _container(base["Deployment"])["args"]
    assert flags.shutdown_grace_seconds < spec["terminationGracePeriodSeconds"]
    (tls_volume,) = spec["volumes"]
    _validate_fragment(tls_volume, "volume-v1.json")
    mount = next(m for m in container["volumeMounts"] if m["name"] == tls_volume["name"])
    for path in (flags.ssl_config_file, flags.rest_api_ssl_cert_file, flags.rest_api_ssl_key_file):
        assert path.parent.as_posix() == mount["mountPath"]  # every TLS file comes from the Secret
    # The image starts with --grpc_health_port=8502 (Dockerfile): the probes ask that port.
    entrypoint = next(line for line in (REPO / "Dockerfile").read_text().splitlines()
                      if line.startswith("ENTRYPOINT") and "serve" in line)
    health_port = _serving_flags(json.loads(entrypoint[11:])[2:]).grpc_health_port
    assert container["readinessProbe"]["grpc"] == {"port": health_port, "service": ""}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["grpc-health"] == health_port and container["livenessProbe"]["tcpSocket"]["port"] == "grpc-health"


def test_the_kserve_v2_service_runs_zoo_serve_as_a_custom_runtime_speaking_v2():
    from zoo.registry import list_models

    (runtime,) = _documents(DEPLOY / "kserve" / "zoo-serve-runtime.yaml")
    (service,) = _documents(DEPLOY / "kserve" / "inferenceservice-v2.yaml")
    assert (runtime["apiVersion"], runtime["kind"]) == ("serving.kserve.io/v1alpha1", "ServingRuntime")
    _validate_fragment(runtime["metadata"], "objectmeta-meta-v1.json")
    assert {"v2", "grpc-v2"} <= set(runtime["spec"]["protocolVersions"])
    (container,) = runtime["spec"]["containers"]
    _validate_fragment(container, "container-v1.json")
    assert container["name"] == "kserve-container"  # the name KServe looks for
    # KServe substitutes {{.Name}} and mounts the model folder at /mnt/models; its HTTP port is
    # 8080 and its gRPC port the one named h2c: zoo serve's flags must put both APIs there.
    flags = _serving_flags([arg.replace("{{.Name}}", "dnn-regressor") for arg in container["args"]])
    assert (flags.model_name, flags.model_base_path) == ("dnn-regressor", "/mnt/models")
    assert flags.rest_api_port == 8080 and flags.bind_address == "0.0.0.0"
    (grpc_port,) = [port for port in container["ports"] if port["name"] == "h2c"]
    assert flags.port == grpc_port["containerPort"]
    assert container["readinessProbe"]["grpc"]["port"] == flags.grpc_health_port

    assert (service["apiVersion"], service["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    model = service["spec"]["predictor"]["model"]
    assert set(model) <= {"modelFormat", "protocolVersion", "runtime", "storageUri", "resources"}
    assert model["protocolVersion"] == "v2" and model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    *_, parent, name = model["storageUri"].rstrip("/").split("/")
    assert parent == "models" and name == service["metadata"]["name"] and name in list_models()
