"""What export, server and client must agree on: the TF Serving API's fixed names (names.py),
which model, version and signature a call is for (model_spec.py), and the TensorProto codec
(tensor_protos.py)."""
