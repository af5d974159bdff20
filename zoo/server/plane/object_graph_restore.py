"""Variables a TF1-style restore leaves out of a TF2 SavedModel, restored by its object graph.

A SavedModel written by `tf.saved_model.save` under a `tf.distribute` strategy (TF Serving's
test_distrat_sequential_keras_saved_model_save builds one) has a saver whose restore op
writes only the strategy's wrapper variables, while the serving functions read the
variables by their own names (`sequential/dense/kernel`), which nothing restores: loaded
into a session, every call fails with FAILED_PRECONDITION "Could not find variable". TF2's
loader (`tf.saved_model.load`) restores by the object graph instead: each variable node of
the SavedObjectGraph is the same node, by number, of the checkpoint's TrackableObjectGraph,
whose VARIABLE_VALUE attribute names the checkpoint key holding its value. This does the
same for exactly the variables the signatures read that are still uninitialized after the
session restore, so TF1 exports and ordinary TF2 exports pass through untouched (a Keras 3
export also holds uninitialized handles of the same names that no signature reads; those are
left alone, not filled with a second copy of the weights). A variable is matched to its graph
handle by name, and only where that is unambiguous (one variable node and one uninitialized
handle of the name, the same dtype and shape): a subclassed model may leave variables it
never serves uninitialized under names other layers share, and those stay as they are.
"""

from __future__ import annotations

import collections
import logging
from pathlib import Path

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, trackable_object_graph_pb2

log = logging.getLogger("zoo.server")

_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def _handles_read_by_signatures(graph: tf.Graph, meta_graph: meta_graph_pb2.MetaGraphDef) -> set:
    """The VarHandleOps that the signatures' outputs depend on (a walk back through the
    graph's top level, where each function call is one op taking the handles it reads)."""
    stack = []
    for signature in meta_graph.signature_def.values():
        for info in signature.outputs.values():
            try:
                stack.append(graph.get_tensor_by_name(info.name).op)
            except (KeyError, ValueError):
                continue
    seen = set()
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(tensor.op for tensor in op.inputs)
        stack.extend(op.control_inputs)
    return {op for op in seen if op.type == "VarHandleOp"}


def restore_uninitialized(session, graph: tf.Graph, export_dir: Path, meta_graph: meta_graph_pb2.MetaGraphDef) -> int:
    """Assign every uninitialized resource variable that the object graph maps to a
    checkpoint value; returns how many were restored."""
    if not meta_graph.HasField("object_graph_def"):
        return 0  # a TF1 export: its saver restores everything it has
    handles = sorted(_handles_read_by_signatures(graph, meta_graph), key=lambda op: op.name)
    if not handles:
        return 0
    with graph.as_default():
        checks = [tf.raw_ops.VarIsInitializedOp(resource=op.outputs[0]) for op in handles]
    uninitialized = [op for op, ready in zip(handles, session.run(checks)) if not ready]
    handle_names = collections.Counter(op.get_attr("shared_name").decode() or op.name for op in uninitialized)
    missing = {name: op for op in uninitialized
               if handle_names[name := op.get_attr("shared_name").decode() or op.name] == 1}
    if not missing:
        return 0
    reader = tf.train.load_checkpoint(str(Path(export_dir) / "variables" / "variables"))
    if not reader.has_tensor(_OBJECT_GRAPH_KEY):
        return 0
    checkpoint_graph = trackable_object_graph_pb2.TrackableObjectGraph()
    checkpoint_graph.ParseFromString(reader.get_tensor(_OBJECT_GRAPH_KEY))
    nodes = meta_graph.object_graph_def.nodes
    names = collections.Counter(node.variable.name for node in nodes if node.WhichOneof("kind") == "variable")
    assignments, feeds = [], {}
    with graph.as_default():
        for number, node in enumerate(nodes):
            op = missing.get(node.variable.name) if node.WhichOneof("kind") == "variable" else None
            if op is None or names[node.variable.name] != 1 or number >= len(checkpoint_graph.nodes):
                continue
            key = next((a.checkpoint_key for a in checkpoint_graph.nodes[number].attributes
                        if a.name == "VARIABLE_VALUE"), None)
            if key is None or not reader.has_tensor(key):
                continue
            value = reader.get_tensor(key)
            if not tf.TensorShape(op.get_attr("shape")).is_compatible_with(value.shape) or \
                    tf.as_dtype(op.get_attr("dtype")) != tf.as_dtype(value.dtype):
                continue
            placeholder = tf.compat.v1.placeholder(op.get_attr("dtype"), shape=value.shape)
            assignments.append(tf.raw_ops.AssignVariableOp(resource=op.outputs[0], value=placeholder))
            feeds[placeholder] = value
    if assignments:
        session.run(assignments, feed_dict=feeds)
        log.info("%s: restored %d variable(s) through the SavedModel's object graph (saved under a "
                 "tf.distribute strategy)", export_dir, len(assignments))
    return len(assignments)
