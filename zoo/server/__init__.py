"""The embedded model server: TensorFlow Serving's REST and gRPC APIs, in Python.

`ZooServer` (zoo.server.app) ties together the model manager (versions, policies, labels,
polling), the serving core (predict/classify/regress/status/metadata, batching, metrics)
and the two front ends (zoo.server.rest, zoo.server.grpc_api).
"""
