"""The front ends: each protocol's wire format to one `DataPlane` call and back.

    rest_v1   TF Serving's REST API (rest_json, json_numbers: its JSON)
    grpc_v1   TF Serving's gRPC API (tensor_checks: its TensorProtos)
    rest_v2   the Open Inference Protocol over REST  } open_inference: V2's meaning,
    grpc_v2   the Open Inference Protocol over gRPC  } v2_tensors: its tensors

A front end decodes, calls the data plane, encodes; what is shared by a protocol's two
transports lives beside them (open_inference, grpc_calls). Sockets, TLS and limits are the
edge's (`zoo.server.edge`).
"""
