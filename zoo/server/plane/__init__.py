"""The data plane: the one room behind every front end.

`DataPlane` (data_plane.py) is what each protocol's front end calls, once per request:
Predict, Classify, Regress, MultiInference, status and metadata, over the loaded versions
(`manager`, `servable`), with batching, metrics and warm-up. Nothing here knows a wire format.
"""
