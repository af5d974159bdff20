"""What export, server and client must agree on: the TF Serving API's fixed names (names.py)
and the TensorProto codec (tensor_protos.py)."""
