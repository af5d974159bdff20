"""`zoo serve`: TensorFlow Serving's APIs and the Open Inference Protocol over one data plane.

    edge/        the network: uvicorn and gRPC servers, TLS, health, the memory budget
    frontends/   four doors: rest_v1, grpc_v1 (TF Serving's API), rest_v2, grpc_v2 (V2)
    plane/       one room: DataPlane over the loaded versions (manager, servable, batching)

`ZooServer` (app.py) wires them from the flags (flags.py) and models.config (config.py).
"""
