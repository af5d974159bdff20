"""The wire format shared by export, server and client: TensorProto encoding and decoding."""
