"""TF Serving's config messages that the `tensorflow-serving-api` wheel does not ship.

The wheel has `ModelServerConfig` but not `BatchingParameters`
(servables/tensorflow/session_bundle_config.proto) or `MonitoringConfig`
(config/monitoring_config.proto), which `--batching_parameters_file` and
`--monitoring_config_file` hold. They are declared here with the upstream names, types and
field numbers, so the same text files parse here exactly as TF Serving parses them.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

_F = descriptor_pb2.FieldDescriptorProto


def _build_pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)

    batching = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = batching.message_type.add(name="BatchingParameters")
    for number, name, type_name in (
        (1, "max_batch_size", ".google.protobuf.Int64Value"),
        (2, "batch_timeout_micros", ".google.protobuf.Int64Value"),
        (3, "max_enqueued_batches", ".google.protobuf.Int64Value"),
        (4, "num_batch_threads", ".google.protobuf.Int64Value"),
        (5, "thread_pool_name", ".google.protobuf.StringValue"),
    ):
        message.field.add(name=name, number=number, type=_F.TYPE_MESSAGE, type_name=type_name,
                          label=_F.LABEL_OPTIONAL)
    message.field.add(name="allowed_batch_sizes", number=6, type=_F.TYPE_INT64, label=_F.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=7, type=_F.TYPE_BOOL, label=_F.LABEL_OPTIONAL)
    message.field.add(name="enable_large_batch_splitting", number=8, type=_F.TYPE_MESSAGE,
                      type_name=".google.protobuf.BoolValue", label=_F.LABEL_OPTIONAL)
    message.field.add(name="max_execution_batch_size", number=9, type=_F.TYPE_MESSAGE,
                      type_name=".google.protobuf.Int64Value", label=_F.LABEL_OPTIONAL)
    pool.Add(batching)

    monitoring = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/monitoring_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
    )
    prometheus = monitoring.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=_F.TYPE_BOOL, label=_F.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    config = monitoring.message_type.add(name="MonitoringConfig")
    config.field.add(name="prometheus_config", number=1, type=_F.TYPE_MESSAGE,
                     type_name=".tensorflow.serving.PrometheusConfig", label=_F.LABEL_OPTIONAL)
    pool.Add(monitoring)
    return pool


_POOL = _build_pool()
BatchingParameters = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
)
MonitoringConfig = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")
)
