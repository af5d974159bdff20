"""The production edge, tried from the outside on 127.0.0.1: floods of slow and idle
connections, the connection limit, TLS and mutual TLS on both ports (the official gRPC
client over `grpc.ssl_channel_credentials`, Python's `ssl` over HTTPS), gRPC health checking
and reflection, user channel arguments, and the drain when the server stops.

Floods here use a few hundred connections; `python -m bench serving --floods` holds 2,000.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import math
import socket
import ssl
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.serving.certificates import make_pki, ssl_config_text

pytestmark = pytest.mark.embedded

REQUEST = b'{"instances": [1.0]}'


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def _post(port: int, timeout: float = 10) -> tuple[int, dict, float]:
    """(status, JSON, seconds) for one predict on a fresh connection."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request("POST", "/v1/models/half_plus_two:predict", body=REQUEST)
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    return response.status, body, time.monotonic() - started


def _open(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sockets.append(socket.create_connection(("127.0.0.1", port), timeout=10))
    return sockets


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.05)
    try:
        return sock.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


# -- floods ------------------------------------------------------------------------------------


def test_slow_header_flood_leaves_room_for_a_good_client_and_is_dropped_at_the_deadline(start):
    from zoo.server.edge.http_server import HttpLimits

    server = start(["half_plus_two"], http_limits=HttpLimits(header_seconds=2.0))
    port = server.embedded.rest_port
    slow = _open(port, 300)
    try:
        for sock in slow:
            sock.sendall(b"POST /v1/models/half_plus_two:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        while time.monotonic() - started < 1.2:  # a header line now and then, each in time for any idle timer
            for sock in slow:
                sock.sendall(b"X-Slow: 1\r\n")
            status, body, seconds = _post(port)
            assert (status, body) == (200, {"predictions": [2.5]}) and seconds < 1.0
            time.sleep(0.3)
        time.sleep(1.5)  # past the 2 s deadline from the first byte
        assert sum(_closed_by_server(sock) for sock in slow) == len(slow)
    finally:
        for sock in slow:
            sock.close()
    assert _post(port)[0] == 200


def test_idle_keep_alive_flood_costs_kilobytes_and_every_connection_is_still_served(start):
    server = start(["half_plus_two"])
    port = server.embedded.rest_port
    before = _rss_mb()
    idle = _open(port, 400)
    request = (b"POST /v1/models/half_plus_two:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(REQUEST), REQUEST))
    try:
        for sock in idle:  # one request each, then nothing: a careless client pool
            sock.sendall(request)
        for sock in idle:
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        per_connection_kb = (_rss_mb() - before) * 1024 / len(idle)
        assert per_connection_kb < 100, f"{per_connection_kb:.1f} KB per idle connection"
        status, body, seconds = _post(port)
        assert (status, body) == (200, {"predictions": [2.5]}) and seconds < 1.0
        for sock in idle[:50]:  # kept alive: each answers its second request too
            sock.sendall(request)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        for sock in idle:
            sock.close()


def test_a_request_past_the_connection_limit_is_read_and_answered_503(start):
    from zoo.server.edge.http_server import HttpLimits

    server = start(["half_plus_two"], http_limits=HttpLimits(max_connections=8))
    port = server.embedded.rest_port
    held = _open(port, 8)
    try:
        time.sleep(0.2)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("POST", "/v1/models/half_plus_two:predict", body=REQUEST)
        response = connection.getresponse()
        assert response.status == 503  # an answer, not a broken pipe
        connection.close()
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert _post(port)[0] == 200


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki():
    return make_pki()


def _tls_server(start, tmp_path, pki, *, client_verify: bool):
    from zoo.server.edge.grpc_server import GrpcOptions
    from zoo.server.edge.http_server import TlsFiles
    from zoo.server.edge.tls import load_ssl_config

    config = tmp_path / "ssl.config"
    config.write_text(ssl_config_text(pki, client_verify=client_verify))
    cert, key = pki.server.write(tmp_path, "server")
    (tmp_path / "ca.crt").write_bytes(pki.ca.cert)
    return start(["half_plus_two"], grpc_options=GrpcOptions(ssl_config=load_ssl_config(config)),
                 rest_tls=TlsFiles(str(cert), str(key), str(tmp_path / "ca.crt") if client_verify else None))


def _grpc_predict(port: int, credentials) -> float:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([3.0], np.float32)))
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return stub.Predict(request, timeout=10).outputs["y"].float_val[0]


def _https_post(port: int, context: ssl.SSLContext) -> int:
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request("POST", "/v1/models/half_plus_two:predict", body=REQUEST)
        response = connection.getresponse()
        assert json.loads(response.read()) == {"predictions": [2.5]}
        return response.status
    finally:
        connection.close()


def _client_context(pki, client=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=pki.ca.cert.decode())
    if client is not None:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as folder:
            cert, key = client.write(Path(folder), "client")
            context.load_cert_chain(cert, key)
    return context


def test_tls_serves_both_ports_to_a_client_that_trusts_the_ca(start, tmp_path, pki):
    server = _tls_server(start, tmp_path, pki, client_verify=False)
    embedded = server.embedded
    assert _grpc_predict(embedded.grpc_port, grpc.ssl_channel_credentials(root_certificates=pki.ca.cert)) == 3.5
    assert _https_post(embedded.rest_port, _client_context(pki)) == 200
    with pytest.raises(grpc.RpcError) as plaintext:  # a plaintext client gets no answer
        with grpc.insecure_channel(f"127.0.0.1:{embedded.grpc_port}") as channel:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(predict_pb2.PredictRequest(), timeout=2)
    assert plaintext.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    untrusting = ssl.create_default_context()  # the system's CAs only: our CA is not among them
    with pytest.raises(ssl.SSLCertVerificationError):
        _https_post(embedded.rest_port, untrusting)


def test_mutual_tls_answers_only_clients_with_a_certificate_from_the_custom_ca(start, tmp_path, pki):
    server = _tls_server(start, tmp_path, pki, client_verify=True)
    grpc_port, rest_port = server.embedded.grpc_port, server.embedded.rest_port
    good = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert, private_key=pki.client.key,
                                        certificate_chain=pki.client.cert)
    assert _grpc_predict(grpc_port, good) == 3.5
    assert _https_post(rest_port, _client_context(pki, pki.client)) == 200
    for who, credentials in {
        "no certificate": grpc.ssl_channel_credentials(root_certificates=pki.ca.cert),
        "a stranger's certificate": grpc.ssl_channel_credentials(
            root_certificates=pki.ca.cert, private_key=pki.stranger.key, certificate_chain=pki.stranger.cert),
    }.items():
        with pytest.raises(grpc.RpcError) as refused:
            _grpc_predict(grpc_port, credentials)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, who
        with pytest.raises((ssl.SSLError, OSError)):
            _https_post(rest_port, _client_context(pki, None if who == "no certificate" else pki.stranger))
    assert _https_post(rest_port, _client_context(pki, pki.client)) == 200  # still serving


def test_a_key_that_does_not_match_the_certificate_is_named_at_start(tmp_path, pki):
    from zoo.errors import ConfigError
    from zoo.server.edge.http_server import TlsFiles
    from zoo.server.edge.tls import load_ssl_config

    mismatched = ssl_config_text(pki, client_verify=False).replace(
        pki.server.key.decode().replace("\n", "\\n"), pki.client.key.decode().replace("\n", "\\n"))
    (tmp_path / "ssl.config").write_text(mismatched)
    with pytest.raises(ConfigError, match="server_cert does not match server_key"):
        load_ssl_config(tmp_path / "ssl.config")
    (tmp_path / "ssl.config").write_text("server_key: 'x'\nclient_verfy: true\n")
    with pytest.raises(ConfigError, match="client_verfy"):  # TF Serving's parser refuses an unknown field too
        load_ssl_config(tmp_path / "ssl.config")
    cert, _ = pki.server.write(tmp_path, "server")
    _, other_key = pki.client.write(tmp_path, "client")
    with pytest.raises(ConfigError, match="do not load as a pair"):
        TlsFiles(str(cert), str(other_key)).context()
    with pytest.raises(ConfigError, match="no such file"):
        TlsFiles(str(tmp_path / "missing.crt"), str(other_key)).context()


# -- health, reflection, channel arguments ------------------------------------------------------


def test_health_is_serving_per_model_and_for_the_server(server, channel):
    stub = health_pb2_grpc.HealthStub(channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    assert stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status == serving
    assert stub.Check(health_pb2.HealthCheckRequest(service="half_plus_two"), timeout=10).status == serving
    with pytest.raises(grpc.RpcError) as unknown:
        stub.Check(health_pb2.HealthCheckRequest(service="no_such_model"), timeout=10)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_follows_the_models_versions(start, repository, tmp_path):
    from tests.serving.conftest import write_config
    from zoo.server.config import load_model_config_file

    server = start(["half_plus_two"])
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        config = load_model_config_file(write_config(repository.root, ["half_plus_two", "missing"],
                                                     path=tmp_path / "more.config"))
        config.model_config_list.config[1].base_path = str(tmp_path / "nothing-here")
        server.embedded.manager.reload(config)
        server.embedded.health.refresh()
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        assert stub.Check(health_pb2.HealthCheckRequest(service="missing"), timeout=10).status == not_serving
        assert stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status == not_serving
        assert stub.Check(health_pb2.HealthCheckRequest(service="half_plus_two"), timeout=10).status == \
            health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services(channel):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"tensorflow.serving.PredictionService", "tensorflow.serving.ModelService",
            "grpc.health.v1.Health"} <= services


def test_a_users_receive_limit_wins_over_the_zoos_default(start):
    from zoo.server.edge.grpc_server import GrpcOptions

    limit = 1000
    server = start(["half_plus_two"], grpc_options=GrpcOptions(
        channel_arguments=f"grpc.max_receive_message_length={limit}"))

    def request_of(size: int) -> predict_pb2.PredictRequest:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "half_plus_two"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([3.0], np.float32)))
        request.model_spec.version_label = "a"
        request.model_spec.version_label = "a" * (size - request.ByteSize() + 1)
        while request.ByteSize() > size:
            request.model_spec.version_label = request.model_spec.version_label[:-1]
        assert request.ByteSize() == size
        return request

    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as at_limit:  # within the limit: reaches the server (no such label)
            stub.Predict(request_of(limit), timeout=10)
        assert at_limit.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as over:
            stub.Predict(request_of(limit + 1), timeout=10)
        assert over.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# -- drain -------------------------------------------------------------------------------------


def test_stop_drains_every_request_in_flight_on_both_ports_and_health_says_not_serving_first(start):
    server = start(["slow", "half_plus_two"], drain_seconds=20)
    embedded = server.embedded
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "slow"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([7.0], np.float32)))
    channel = grpc.insecure_channel(server.grpc_address)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING

    def rest_call():
        return server.rest("POST", "/v1/models/slow:predict", {"instances": [7.0]})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        rest = [pool.submit(rest_call) for _ in range(4)]
        grpc_calls = [stub.Predict.future(request, timeout=60) for _ in range(4)]
        time.sleep(0.3)  # every call is in flight: the slow model takes far longer
        stopping = threading.Thread(target=embedded.stop)
        stopping.start()
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
        assert [f.result(timeout=60) for f in rest] == [(200, {"predictions": [7.0]})] * 4
        assert [list(f.result(timeout=60).outputs["y"].float_val) for f in grpc_calls] == [[7.0]] * 4
        stopping.join(timeout=60)
    channel.close()
    assert not stopping.is_alive()
    with pytest.raises(OSError):  # the REST port no longer takes connections
        _post(embedded.rest_port, timeout=2)


def test_the_zoo_clients_zoo_predict_and_beam_speak_mutual_tls(start, tmp_path, pki):
    from zoo.cli import main
    from zoo.client import ClientError, ClientTls, GrpcClient, RestClient

    server = _tls_server(start, tmp_path, pki, client_verify=True)
    embedded = server.embedded
    ca = tmp_path / "ca.crt"
    cert, key = pki.client.write(tmp_path, "client")
    tls = ClientTls(str(ca), str(cert), str(key))
    for client_class, port in ((GrpcClient, embedded.grpc_port), (RestClient, embedded.rest_port)):
        with client_class(f"127.0.0.1:{port}", tls=tls) as client:
            assert client.predict("half_plus_two", {"x": [3.0, 5.0]})["y"].tolist() == [3.5, 4.5]
        with client_class(f"127.0.0.1:{port}", tls=ClientTls(str(ca)), retries=0, timeout=5) as client:
            with pytest.raises(ClientError):  # no client certificate: refused
                client.predict("half_plus_two", {"x": [3.0]})
    rows = tmp_path / "rows.csv"
    rows.write_text("id,x\na,1.0\nb,3.0\n")
    for via, port in (("grpc", embedded.grpc_port), ("rest", embedded.rest_port)):
        output = tmp_path / f"predictions-{via}.csv"
        assert main(["predict", "half_plus_two", "--input", str(rows), "--output", str(output), "--via", via,
                     "--server", f"127.0.0.1:{port}", "--ca-file", str(ca), "--client-cert", str(cert),
                     "--client-key", str(key)]) == 0
        assert output.read_text().splitlines()[1:] == ["a,2.5", "b,3.5"]
    pytest.importorskip("apache_beam")
    from zoo.beam.pipeline import main as beam_main

    prefix = tmp_path / "beam" / "predictions"
    assert beam_main(["half_plus_two", "--input", str(rows), "--output", str(prefix), "--via", "grpc",
                      "--server", f"127.0.0.1:{embedded.grpc_port}", "--ca-file", str(ca), "--client-cert", str(cert),
                      "--client-key", str(key)]) == 0
    (shard,) = prefix.parent.glob("predictions-[0-9]*-of-*")
    assert sorted(shard.read_text().splitlines()[1:]) == ["a,2.5", "b,3.5"]


def test_an_open_health_watch_does_not_hold_the_stop_for_the_whole_grace_period(start):
    server = start(["half_plus_two"], drain_seconds=20)
    channel = grpc.insecure_channel(server.grpc_address)
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING  # a mesh's watch, never cancelled
    started = time.monotonic()
    server.embedded.stop()
    assert time.monotonic() - started < 5  # no call was in flight: nothing to wait for
    channel.close()


# -- the memory budget for requests in flight ----------------------------------------------------


def _big_rest_body(numbers: int) -> bytes:
    return json.dumps({"instances": [1.0] * numbers}).encode()


def _big_grpc_request(numbers: int) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones(numbers, np.float32)))
    return request


def test_a_request_over_the_whole_memory_budget_is_refused_before_it_is_decoded(start):
    budget = 1 << 20
    server = start(["half_plus_two"], request_memory_budget=budget)
    body = _big_rest_body(30_000)  # 150 KB: about 2.5 MB to decode
    status, answer = server.rest("POST", "/v1/models/half_plus_two:predict", raw=body)
    assert status == 413 and "--request_memory_budget_bytes" in answer["error"] and str(budget) in answer["error"]
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Predict(_big_grpc_request(100_000), timeout=10)  # 400 KB: 4 MB
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--request_memory_budget_bytes" in refused.value.details()
        assert list(stub.Predict(_big_grpc_request(3), timeout=10).outputs["y"].float_val) == [2.5] * 3
    # A chunked body declares nothing: its reservation grows chunk by chunk, and the total is what counts.
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 8192]), body[i:i + 8192]) for i in range(0, len(body), 8192))
    with socket.create_connection(("127.0.0.1", server.embedded.rest_port), timeout=10) as sock:
        sock.sendall(b"POST /v1/models/half_plus_two:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413") and b"more than the server's whole budget" in answer
    assert server.embedded.budget.in_flight == 0  # every reservation given back
    assert server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [1.0]})[0] == 200


def test_requests_wait_for_room_in_the_budget_and_are_refused_503_when_none_comes(start):
    server = start(["half_plus_two"], request_memory_budget=4 << 20)
    budget = server.embedded.budget
    budget.reserve(3 << 20)  # as if large requests were being decoded
    body = _big_rest_body(20_000)  # 100 KB: 1.7 MB, no room
    started = time.monotonic()
    status, answer = server.rest("POST", "/v1/models/half_plus_two:predict", raw=body)
    assert status == 503 and "Server busy" in answer["error"] and time.monotonic() - started >= budget.wait_seconds
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as busy:
            stub.Predict(_big_grpc_request(50_000), timeout=10)  # 200 KB: 2 MB, no room
        assert busy.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Room that comes within the wait admits the request.
        threading.Timer(0.3, budget.release, args=(3 << 20,)).start()
        status, answer = server.rest("POST", "/v1/models/half_plus_two:predict", raw=body)
        assert status == 200 and len(answer["predictions"]) == 20_000
    assert budget.in_flight == 0


def test_a_large_array_of_numbers_is_admitted_at_its_piecewise_cost_and_answered_as_any_body(start):
    """1.25 MB of numbers is admitted at what decoding it in pieces costs (json_numbers: 4x +
    8 MB, 13 MB), not at the 17x (21 MB) of parsing it whole; the same numbers with a NaN
    among them must be parsed whole, and the thread reserves the difference before it parses."""
    body = b'{"instances": [' + b", ".join([b"1.5"] * 250_000) + b"]}"
    with_nan = body[:-2] + b", NaN]}"
    server = start(["half_plus_two"], request_memory_budget=32 << 20)
    values = np.round(np.random.default_rng(0).normal(size=30_000), 3)
    status, answer = server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": values.tolist()})
    assert status == 200
    np.testing.assert_allclose(answer["predictions"], values.astype(np.float32) / 2 + 2, rtol=1e-6)
    ragged = json.dumps({"instances": [[1.0, 2.0]] * 20_000 + [[1.0]]}).encode()
    status, answer = server.rest("POST", "/v1/models/half_plus_two:predict", raw=ragged)
    assert status == 400 and "unequal lengths" in answer["error"]  # the whole parse's words
    status, answer = server.rest("POST", "/v1/models/half_plus_two:predict", raw=with_nan)
    assert status == 200 and answer["predictions"][0] == 2.75 and math.isnan(answer["predictions"][-1])
    assert server.embedded.budget.in_flight == 0
    tight = start(["half_plus_two"], request_memory_budget=20 << 20)
    status, answer = tight.rest("POST", "/v1/models/half_plus_two:predict", raw=body)
    assert status == 200 and answer["predictions"] == [2.75] * 250_000
    status, answer = tight.rest("POST", "/v1/models/half_plus_two:predict", raw=with_nan)
    assert status == 413 and "more than the server's whole budget" in answer["error"]
    assert tight.embedded.budget.in_flight == 0
